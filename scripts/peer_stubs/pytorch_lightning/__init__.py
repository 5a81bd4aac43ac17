"""Stand-in: taming's VQModel derives from LightningModule; for inference an nn.Module."""
import torch


class LightningModule(torch.nn.Module):
    pass

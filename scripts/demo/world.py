"""The demo world: 64x64 pictures of one or two coloured shapes on a plain background, with
captions from templates. Shared by train_vqgan.py, train_clip.py and eval.py.

Everything is drawn here (numpy), so the data set costs nothing to store: a batch is drawn
afresh for each training step from a seeded generator.
"""
import os

import numpy as np

SIZE = 64
COLOURS = {  # name -> RGB; tests/test-demo-quality.c judges pixels with the same palette
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 180),
    "orange": (250, 140, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle"]
SIZES = {"small": (6.0, 8.0), "large": (13.0, 16.0)}  # "radius" in pixels
SIZE_NAMES = list(SIZES)
POSITIONS = {  # name -> centre (x, y)
    "in the center": (32, 32),
    "in the top left": (17, 17),
    "in the top right": (47, 17),
    "in the bottom left": (17, 47),
    "in the bottom right": (47, 47),
}
POSITION_NAMES = list(POSITIONS)

# What never appears in training, in pictures or captions (other than as a hard negative), so
# that the quality test and the "held-out" zero-shot figures use prompts the models never saw.
# VQCLIP_DEMO_HOLDOUT=pairs: eight (shape colour, background) pairs, with every shape; the
# VQGAN, the first CLIP training and the first two fine-tuning stages held these out.
# "triples" (the default since the third fine-tuning stage, 2026-11-27): only these eight pairs
# each with one shape; the pairs themselves occur with the other two shapes.
HELD_OUT_PAIRS = {("red", "yellow"), ("green", "purple"), ("blue", "orange"), ("yellow", "black"),
                  ("purple", "white"), ("orange", "green"), ("white", "red"), ("black", "blue")}
HELD_OUT_TRIPLES = {("red", "circle", "yellow"), ("green", "square", "purple"),
                    ("blue", "triangle", "orange"), ("yellow", "circle", "black"),
                    ("purple", "square", "white"), ("orange", "triangle", "green"),
                    ("white", "circle", "red"), ("black", "square", "blue")}
HOLDOUT = os.environ.get("VQCLIP_DEMO_HOLDOUT", "triples")
if HOLDOUT not in ("pairs", "triples"):
    raise SystemExit("VQCLIP_DEMO_HOLDOUT must be 'pairs' or 'triples', not %r" % HOLDOUT)


def is_held_out(colour, bg, shape):
    """Whether a shape of this colour and shape on this background is held out."""
    if HOLDOUT == "pairs":
        return (colour, bg) in HELD_OUT_PAIRS
    return (colour, shape, bg) in HELD_OUT_TRIPLES


def allowed(colour, bg, held_out, shape=None):
    """Whether training may show it (held_out: whether an evaluation of held-out scenes may).
    Without the shape only what the pair decides is checked: call again once it is drawn."""
    if colour == bg:
        return False
    return held_out or not is_held_out(colour, bg, shape)


def sample_scene(rng, two_p=0.25, held_out=False):
    """A scene: dict(bg, shapes=[dict(colour, shape, size, pos, r, cx, cy)])."""
    while True:
        bg = COLOUR_NAMES[rng.integers(len(COLOURS))]
        n = 2 if rng.random() < two_p else 1
        shapes = []
        positions = list(rng.permutation(len(POSITIONS)))
        for k in range(n):
            colour = COLOUR_NAMES[rng.integers(len(COLOURS))]
            if not allowed(colour, bg, held_out) or any(s["colour"] == colour for s in shapes):
                break
            shape = SHAPES[rng.integers(len(SHAPES))]
            if not allowed(colour, bg, held_out, shape):
                break
            shapes.append(make_shape(rng, colour, shape,
                                     SIZE_NAMES[rng.integers(2)] if n == 1 else "small",
                                     POSITION_NAMES[positions[k]]))
        if len(shapes) == n:
            if held_out and not any(is_held_out(s["colour"], bg, s["shape"]) for s in shapes):
                continue
            return {"bg": bg, "shapes": shapes}


def make_shape(rng, colour, shape, size, pos):
    lo, hi = SIZES[size]
    cx, cy = POSITIONS[pos]
    jit = 3.0 if size == "large" else 5.0
    if pos != "in the center" and size == "large":
        jit = 1.5
    return {"colour": colour, "shape": shape, "size": size, "pos": pos,
            "r": float(rng.uniform(lo, hi)), "cx": cx + float(rng.uniform(-jit, jit)),
            "cy": cy + float(rng.uniform(-jit, jit))}


def shape_mask(shape, r, cx, cy, ss=2):
    """Coverage in [0, 1] of each pixel (ss x ss supersampling)."""
    g = (np.arange(SIZE * ss) + 0.5) / ss
    x, y = np.meshgrid(g, g)
    dx, dy = x - cx, y - cy
    if shape == "circle":
        m = dx * dx + dy * dy <= r * r
    elif shape == "square":
        h = r * 0.88
        m = (np.abs(dx) <= h) & (np.abs(dy) <= h)
    else:  # triangle pointing up, same area scale
        top, bot, half = cy - r * 1.05, cy + r * 0.85, r * 1.15
        t = (y - top) / (bot - top)
        m = (t >= 0) & (t <= 1) & (np.abs(dx) <= t * half)
    m = m.astype(np.float32).reshape(SIZE, ss, SIZE, ss).mean(axis=(1, 3))
    return m


def render(scene, rng=None, jitter=10.0):
    """HxWx3 float32 in [0, 1]; also returns the union shape mask (HxW)."""
    def col(name):
        c = np.array(COLOURS[name], np.float32)
        if rng is not None and jitter:
            c = c + rng.uniform(-jitter, jitter, 3)
        return np.clip(c, 0, 255) / 255.0
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = col(scene["bg"])
    union = np.zeros((SIZE, SIZE), np.float32)
    for s in scene["shapes"]:
        m = shape_mask(s["shape"], s["r"], s["cx"], s["cy"])[..., None]
        img = img * (1 - m) + col(s["colour"]) * m
        union = np.maximum(union, m[..., 0])
    return img, union


def caption_spec(scene, rng, size_p=0.6, pos_p=0.6):
    """Which template and which optional words (size, position per shape) a caption uses."""
    n = len(scene["shapes"])
    return {"form": int(rng.integers(4)), "size": [bool(rng.random() < size_p) for _ in range(n)],
            "pos": [bool(rng.random() < pos_p) for _ in range(n)]}


def caption(scene, spec):
    """A caption naming colour, shape and background (size and position as `spec` says)."""
    parts = []
    for k, s in enumerate(scene["shapes"]):
        words = "a " + (s["size"] + " " if spec["size"][k] else "") + s["colour"] + " " + s["shape"]
        parts.append(words + (" " + s["pos"] if spec["pos"][k] else ""))
    things = " and ".join(parts)
    bg = scene["bg"]
    if spec["form"] == 1:
        return f"a {bg} background with {things}"
    if spec["form"] == 2:
        return f"{things} on {bg}"
    return f"{things} on a {bg} background"


def _changed(rng, value, choices, avoid=()):
    opts = [c for c in choices if c != value and c not in avoid]
    return opts[rng.integers(len(opts))]


def hard_negative(scene, spec, rng):
    """A copy of the scene with one attribute that the caption names changed (a shape's colour,
    shape, size or position, the background, or a colour swapped with the background)."""
    sc = {"bg": scene["bg"], "shapes": [dict(s) for s in scene["shapes"]]}
    k = int(rng.integers(len(sc["shapes"])))
    s = sc["shapes"][k]
    taken = [x["colour"] for x in sc["shapes"]] + [sc["bg"]]
    kinds = ["colour", "colour", "bg", "bg", "shape", "shape", "swap"]
    if spec["size"][k] and len(sc["shapes"]) == 1:
        kinds.append("size")
    if spec["pos"][k]:
        kinds.append("pos")
    if len(sc["shapes"]) == 2:
        kinds.append("exchange")
    kind = kinds[rng.integers(len(kinds))]
    if kind == "colour":
        s["colour"] = _changed(rng, s["colour"], COLOUR_NAMES, taken)
    elif kind == "bg":
        sc["bg"] = _changed(rng, sc["bg"], COLOUR_NAMES, taken)
    elif kind == "shape":
        s["shape"] = _changed(rng, s["shape"], SHAPES)
    elif kind == "size":
        s["size"] = _changed(rng, s["size"], SIZE_NAMES)
    elif kind == "pos":
        s["pos"] = _changed(rng, s["pos"], POSITION_NAMES, [x["pos"] for x in sc["shapes"]])
    elif kind == "swap":
        s["colour"], sc["bg"] = sc["bg"], s["colour"]
    else:  # two shapes: exchange their colours
        a, b = sc["shapes"]
        a["colour"], b["colour"] = b["colour"], a["colour"]
    return sc


def batch(rng, n, two_p=0.25, held_out=False, jitter=10.0):
    """n scenes, their images (n x 3 x 64 x 64 float32 in [0, 1]) and shape masks (n x 64 x 64)."""
    scenes = [sample_scene(rng, two_p, held_out) for _ in range(n)]
    imgs = np.empty((n, 3, SIZE, SIZE), np.float32)
    masks = np.empty((n, SIZE, SIZE), np.float32)
    for i, sc in enumerate(scenes):
        im, m = render(sc, rng, jitter)
        imgs[i] = im.transpose(2, 0, 1)
        masks[i] = m
    return scenes, imgs, masks


def all_words():
    words = set("a on background with and in the".split())
    words.update(COLOURS, SHAPES, SIZES)
    for p in POSITIONS:
        words.update(p.split())
    return sorted(words)

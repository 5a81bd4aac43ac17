/* Optimisers for z (see optim.h).
 *
 * Every step is written as the reference writes it, operation by operation, with the scalar
 * coefficients computed in double on the host as Python computes them. A step kernel only
 * computes the next values of the state and of param; the driver copies them in afterwards,
 * so a failure part-way leaves the optimiser and param as they were. */
#include "gen/optim.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/torch_error.h"

#define MAX_STATE 3

typedef struct {
    double beta1, beta2; /* Adam family; beta1 is unused by RMSprop */
    double alpha;        /* RMSprop smoothing constant */
    double eps;
    double weight_decay; /* AdamW (decoupled); the others use their default of 0 */
    double delta;        /* AdamP's scale-invariance threshold (wd_ratio unused: no decay) */
} hparams;

struct vqc_optim {
    vqc_optim_kind kind;
    double lr;
    hparams h;
    vqt_tensor *param; /* borrowed */
    int64_t steps;
    int nstate;
    const char *names[MAX_STATE];
    vqt_tensor *state[MAX_STATE];
};

/* A step kernel: given the gradient and the new step number t (>= 1), sets next[0..nstate-1]
 * to the next state values and next[nstate] to the next param (scope-owned, or borrowed from
 * the arguments). Failures show as NULL entries. */
typedef void (*step_fn)(const vqc_optim *o, const vqt_tensor *g, double t, const vqt_tensor **next);

/* ---- names ----------------------------------------------------------------------------- */

static const char *const kind_names[VQC_OPT_COUNT] = {
    [VQC_OPT_ADAM] = "Adam",         [VQC_OPT_ADAMW] = "AdamW", [VQC_OPT_ADAGRAD] = "Adagrad",
    [VQC_OPT_ADAMAX] = "Adamax",     [VQC_OPT_RADAM] = "RAdam", [VQC_OPT_RMSPROP] = "RMSprop",
    [VQC_OPT_DIFFGRAD] = "DiffGrad", [VQC_OPT_ADAMP] = "AdamP",
};

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char cb = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb)
            return false;
    }
    return *a == *b;
}

int vqc_optim_parse(const char *name, vqc_optim_kind *out)
{
    for (int k = 0; name && k < VQC_OPT_COUNT; k++) {
        if (ascii_ieq(name, kind_names[k])) {
            *out = (vqc_optim_kind)k;
            return 0;
        }
    }
    return vqc_error_set(VQC_ERR_USAGE,
                         "unknown optimiser '%s' (valid: Adam, AdamW, Adagrad, Adamax, "
                         "DiffGrad, AdamP, RAdam, RMSprop)",
                         name ? name : "(null)");
}

const char *vqc_optim_name(vqc_optim_kind kind)
{
    return (unsigned)kind < VQC_OPT_COUNT ? kind_names[kind] : "unknown";
}

/* ---- life cycle ------------------------------------------------------------------------ */

/* The reference defaults, and the names of the state tensors in torch's state_dict order. */
static void kind_setup(vqc_optim *o)
{
    o->h = (hparams){.beta1 = 0.9,
                     .beta2 = 0.999,
                     .alpha = 0.99,
                     .eps = 1e-8,
                     .weight_decay = 0.0,
                     .delta = 0.1};
    const char **n = o->names;
    n[0] = "exp_avg";
    n[1] = "exp_avg_sq";
    o->nstate = 2;
    switch (o->kind) {
    case VQC_OPT_ADAMW: o->h.weight_decay = 0.01; break;
    case VQC_OPT_ADAGRAD: n[0] = "sum", o->nstate = 1, o->h.eps = 1e-10; break;
    case VQC_OPT_ADAMAX: n[1] = "exp_inf"; break;
    case VQC_OPT_RMSPROP: n[0] = "square_avg", o->nstate = 1; break;
    case VQC_OPT_DIFFGRAD: n[2] = "previous_grad", o->nstate = 3; break;
    default: break;
    }
}

static int check_param(const vqt_tensor *param)
{
    if (!param)
        return vqc_error_set(VQC_ERR_USAGE, "optimiser: no parameter tensor");
    vqc_dtype dt = vqt_dtype(param);
    if (dt != VQC_DTYPE_F32 && dt != VQC_DTYPE_F64 && dt != VQC_DTYPE_F16 && dt != VQC_DTYPE_BF16)
        return vqc_error_set(VQC_ERR_USAGE, "optimiser: the parameter must be floating, not %s",
                             vqc_dtype_name(dt));
    if (vqt_ndim(param) < 0 || vqt_ndim(param) > 8)
        return vqc_error_set(VQC_ERR_USAGE, "optimiser: the parameter has %d dims (at most 8)",
                             vqt_ndim(param));
    return 0;
}

int vqc_optim_create(vqc_optim_kind kind, double lr, vqt_tensor *param, vqc_optim **out)
{
    *out = NULL;
    if ((unsigned)kind >= VQC_OPT_COUNT)
        return vqc_error_set(VQC_ERR_USAGE, "optimiser: invalid kind %d", (int)kind);
    if (!isfinite(lr) || lr < 0)
        return vqc_error_set(VQC_ERR_USAGE, "optimiser: invalid learning rate %g", lr);
    int rc = check_param(param);
    if (rc)
        return rc;
    vqc_optim *o = calloc(1, sizeof *o);
    if (!o)
        return vqc_error_set(VQC_ERR_NOMEM, "optimiser: out of memory");
    o->kind = kind;
    o->lr = lr;
    o->param = param;
    kind_setup(o);
    int64_t shape[8];
    int nd = vqt_shape(param, shape);
    for (int i = 0; i < o->nstate; i++) {
        o->state[i] = vqt_persist(vqt_full(nd, shape, 0.0, vqt_dtype(param), vqt_device_of(param)));
        if (!o->state[i]) {
            rc = vqc_torch_fail("optimiser state");
            vqc_optim_free(o);
            return rc;
        }
    }
    *out = o;
    return 0;
}

void vqc_optim_free(vqc_optim *opt)
{
    if (!opt)
        return;
    for (int i = 0; i < opt->nstate; i++)
        vqt_free(opt->state[i]);
    free(opt);
}

vqc_optim_kind vqc_optim_get_kind(const vqc_optim *opt)
{
    return opt->kind;
}

double vqc_optim_get_lr(const vqc_optim *opt)
{
    return opt->lr;
}

int vqc_optim_set_lr(vqc_optim *opt, double lr)
{
    if (!isfinite(lr) || lr < 0)
        return vqc_error_set(VQC_ERR_USAGE, "optimiser: invalid learning rate %g", lr);
    opt->lr = lr;
    return 0;
}

/* ---- state ----------------------------------------------------------------------------- */

int64_t vqc_optim_steps(const vqc_optim *opt)
{
    return opt->steps;
}

int vqc_optim_set_steps(vqc_optim *opt, int64_t steps)
{
    if (steps < 0)
        return vqc_error_set(VQC_ERR_USAGE, "optimiser: negative step count %lld",
                             (long long)steps);
    opt->steps = steps;
    return 0;
}

int vqc_optim_state_count(const vqc_optim *opt)
{
    return opt->nstate;
}

const char *vqc_optim_state_name(const vqc_optim *opt, int i)
{
    return i >= 0 && i < opt->nstate ? opt->names[i] : NULL;
}

const vqt_tensor *vqc_optim_state_tensor(const vqc_optim *opt, int i)
{
    return i >= 0 && i < opt->nstate ? opt->state[i] : NULL;
}

/* True when a and b have the same shape. */
static bool same_shape(const vqt_tensor *a, const vqt_tensor *b)
{
    int64_t sa[8], sb[8];
    int na = vqt_shape(a, sa), nb = vqt_shape(b, sb);
    if (na < 0 || na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (sa[i] != sb[i])
            return false;
    return true;
}

int vqc_optim_state_set(vqc_optim *opt, const char *name, const vqt_tensor *value)
{
    for (int i = 0; name && i < opt->nstate; i++) {
        if (strcmp(name, opt->names[i]) != 0)
            continue;
        if (!value || !same_shape(value, opt->param))
            return vqc_error_set(VQC_ERR_USAGE, "%s state '%s': shape differs from the parameter",
                                 vqc_optim_name(opt->kind), name);
        if (vqt_copy_(opt->state[i], value) != 0)
            return vqc_torch_fail("%s state '%s'", vqc_optim_name(opt->kind), name);
        return 0;
    }
    return vqc_error_set(VQC_ERR_USAGE, "%s has no state called '%s'", vqc_optim_name(opt->kind),
                         name ? name : "(null)");
}

/* ---- building blocks ------------------------------------------------------------------- */

/* avg * beta + x * (1 - beta): torch's avg.mul_(beta).add_(x, alpha=1 - beta). */
static vqt_tensor *ema(const vqt_tensor *avg, const vqt_tensor *x, double beta)
{
    return vqt_binary(VQT_ADD, vqt_binary_s(VQT_MUL, avg, beta),
                      vqt_binary_s(VQT_MUL, x, 1.0 - beta));
}

/* avg * beta + g * g * (1 - beta): avg.mul_(beta).addcmul_(g, g, value=1 - beta). */
static vqt_tensor *ema_sq(const vqt_tensor *avg, const vqt_tensor *g, double beta)
{
    return vqt_binary(VQT_ADD, vqt_binary_s(VQT_MUL, avg, beta),
                      vqt_binary(VQT_MUL, vqt_binary_s(VQT_MUL, g, 1.0 - beta), g));
}

/* p + value * num / den: p.addcdiv_(num, den, value=value). */
static vqt_tensor *addcdiv(const vqt_tensor *p, const vqt_tensor *num, const vqt_tensor *den,
                           double value)
{
    return vqt_binary(VQT_ADD, p, vqt_binary(VQT_DIV, vqt_binary_s(VQT_MUL, num, value), den));
}

/* sqrt(x) / div + eps; div == 1 skips the division (which would be exact anyway). */
static vqt_tensor *sqrt_eps(const vqt_tensor *x, double div, double eps)
{
    vqt_tensor *s = vqt_unary(VQT_SQRT, x);
    if (div != 1.0)
        s = vqt_binary_s(VQT_DIV, s, div);
    return vqt_binary_s(VQT_ADD, s, eps);
}

/* 1 / x, which is what Python's `scalar / tensor` computes before scaling. */
static vqt_tensor *reciprocal(const vqt_tensor *x)
{
    return vqt_binary_s(VQT_POW, x, -1.0);
}

/* ---- torch.optim kernels --------------------------------------------------------------- */

/* Adam and AdamW (torch 1.13 _single_tensor_adam/adamw, amsgrad off). AdamW decays param by
 * 1 - lr * weight_decay before the update. */
static void step_adam(const vqc_optim *o, const vqt_tensor *g, double t, const vqt_tensor **next)
{
    const hparams *h = &o->h;
    const vqt_tensor *p = o->param;
    if (h->weight_decay != 0.0)
        p = vqt_binary_s(VQT_MUL, p, 1.0 - o->lr * h->weight_decay);
    vqt_tensor *m = ema(o->state[0], g, h->beta1);
    vqt_tensor *v = ema_sq(o->state[1], g, h->beta2);
    double bc1 = 1.0 - pow(h->beta1, t), bc2 = 1.0 - pow(h->beta2, t);
    double step_size = o->lr / bc1;
    vqt_tensor *denom = sqrt_eps(v, sqrt(bc2), h->eps);
    next[0] = m;
    next[1] = v;
    next[2] = addcdiv(p, m, denom, -step_size);
}

/* Adagrad (lr_decay 0, initial accumulator 0, no weight decay). */
static void step_adagrad(const vqc_optim *o, const vqt_tensor *g, double t, const vqt_tensor **next)
{
    (void)t; /* clr = lr / (1 + (t - 1) * lr_decay) = lr */
    vqt_tensor *sum = vqt_binary(VQT_ADD, o->state[0], vqt_binary(VQT_MUL, g, g));
    vqt_tensor *std = sqrt_eps(sum, 1.0, o->h.eps);
    next[0] = sum;
    next[1] = addcdiv(o->param, g, std, -o->lr);
}

/* Adamax: exp_inf = max(exp_inf * beta2, |g| + eps); p -= lr / bc1 * m / exp_inf. */
static void step_adamax(const vqc_optim *o, const vqt_tensor *g, double t, const vqt_tensor **next)
{
    const hparams *h = &o->h;
    vqt_tensor *m = ema(o->state[0], g, h->beta1);
    vqt_tensor *u = vqt_binary(VQT_MAX, vqt_binary_s(VQT_MUL, o->state[1], h->beta2),
                               vqt_binary_s(VQT_ADD, vqt_unary(VQT_ABS, g), h->eps));
    double clr = o->lr / (1.0 - pow(h->beta1, t));
    next[0] = m;
    next[1] = u;
    next[2] = addcdiv(o->param, m, u, -clr);
}

/* RAdam (torch 1.13): the rectified adaptive step once the SMA length rho_t exceeds 5, else
 * the bias-corrected momentum step. */
static void step_radam(const vqc_optim *o, const vqt_tensor *g, double t, const vqt_tensor **next)
{
    const hparams *h = &o->h;
    double bc1 = 1.0 - pow(h->beta1, t), bc2 = 1.0 - pow(h->beta2, t);
    vqt_tensor *m = ema(o->state[0], g, h->beta1);
    vqt_tensor *v = ema_sq(o->state[1], g, h->beta2);
    vqt_tensor *step = vqt_binary_s(VQT_MUL, vqt_binary_s(VQT_DIV, m, bc1), o->lr);
    double rho_inf = 2.0 / (1.0 - h->beta2) - 1.0;
    double rho_t = rho_inf - 2.0 * t * pow(h->beta2, t) / bc2;
    if (rho_t > 5.0) {
        double rect = sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf /
                           ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
        vqt_tensor *adaptive =
            vqt_binary_s(VQT_MUL, reciprocal(sqrt_eps(v, 1.0, h->eps)), sqrt(bc2));
        step = vqt_binary_s(VQT_MUL, vqt_binary(VQT_MUL, step, adaptive), rect);
    }
    next[0] = m;
    next[1] = v;
    next[2] = vqt_binary(VQT_SUB, o->param, step);
}

/* RMSprop (alpha 0.99, no momentum, not centred). */
static void step_rmsprop(const vqc_optim *o, const vqt_tensor *g, double t, const vqt_tensor **next)
{
    (void)t;
    vqt_tensor *sq = ema_sq(o->state[0], g, o->h.alpha);
    next[0] = sq;
    next[1] = addcdiv(o->param, g, sqrt_eps(sq, 1.0, o->h.eps), -o->lr);
}

/* ---- torch-optimizer kernels ----------------------------------------------------------- */

/* DiffGrad (Dubey et al. 2019): Adam's momentum scaled by the friction coefficient
 * dfc = 1 / (1 + exp(-|previous_grad - grad|)); denom without bias correction, folded into the
 * step size instead. */
static void step_diffgrad(const vqc_optim *o, const vqt_tensor *g, double t,
                          const vqt_tensor **next)
{
    const hparams *h = &o->h;
    vqt_tensor *m = ema(o->state[0], g, h->beta1);
    vqt_tensor *v = ema_sq(o->state[1], g, h->beta2);
    vqt_tensor *denom = sqrt_eps(v, 1.0, h->eps);
    double bc1 = 1.0 - pow(h->beta1, t), bc2 = 1.0 - pow(h->beta2, t);
    vqt_tensor *diff = vqt_unary(VQT_ABS, vqt_binary(VQT_SUB, o->state[2], g));
    vqt_tensor *dfc =
        reciprocal(vqt_binary_s(VQT_ADD, vqt_unary(VQT_EXP, vqt_unary(VQT_NEG, diff)), 1.0));
    vqt_tensor *m1 = vqt_binary(VQT_MUL, m, dfc);
    double step_size = o->lr * sqrt(bc2) / bc1;
    next[0] = m;
    next[1] = v;
    next[2] = g;
    next[3] = addcdiv(o->param, m1, denom, -step_size);
}

/* The 2-norm of each row of a 2-D tensor, as [rows, 1]. */
static vqt_tensor *row_norm(const vqt_tensor *x)
{
    int64_t one = 1;
    return vqt_unary(VQT_SQRT, vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, x, x), 1, &one, true));
}

/* AdamP's test and projection for one view of the tensors as [rows, cols] (rows = size(0): the
 * channel view; rows = 1: the layer view). Sets *cond to a 0-dim bool tensor, true when
 * max |cos(grad, param)| over the rows is below delta / sqrt(cols) (the parameter looks scale
 * invariant), and returns perturb minus its component along each row of param. */
static vqt_tensor *adamp_view(const vqc_optim *o, const vqt_tensor *g, const vqt_tensor *perturb,
                              int64_t rows, vqt_tensor **cond)
{
    const hparams *h = &o->h;
    int64_t shape[8], view[2] = {rows, vqt_numel(o->param) / rows}, one = 1;
    int nd = vqt_shape(o->param, shape);
    vqt_tensor *x = vqt_reshape(g, 2, view), *y = vqt_reshape(o->param, 2, view);
    vqt_tensor *xn = vqt_binary_s(VQT_ADD, row_norm(x), h->eps);
    vqt_tensor *yn = vqt_binary_s(VQT_ADD, row_norm(y), h->eps);
    vqt_tensor *dot = vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, x, y), 1, &one, true);
    vqt_tensor *cos = vqt_binary(VQT_DIV, vqt_binary(VQT_DIV, vqt_unary(VQT_ABS, dot), xn), yn);
    *cond = vqt_binary_s(VQT_LT, vqt_reduce(VQT_AMAX, cos, 0, NULL, false),
                         h->delta / sqrt((double)view[1]));
    vqt_tensor *pn = vqt_binary(VQT_DIV, y, yn);
    vqt_tensor *pv = vqt_reshape(perturb, 2, view);
    vqt_tensor *along = vqt_reduce(VQT_SUM, vqt_binary(VQT_MUL, pn, pv), 1, &one, true);
    vqt_tensor *proj = vqt_binary(VQT_SUB, pv, vqt_binary(VQT_MUL, pn, along));
    return vqt_reshape(proj, nd, shape);
}

/* AdamP (Heo et al. 2021; nesterov off, weight decay 0): Adam's update direction
 * perturb = m / (sqrt(v) / sqrt(bc2) + eps); for a parameter of 2+ dims whose gradient is
 * nearly orthogonal to it (channel view first, then layer view), the radial component of
 * perturb is removed. Both tests run on the device, the choice is a `where`: no host sync. */
static void step_adamp(const vqc_optim *o, const vqt_tensor *g, double t, const vqt_tensor **next)
{
    const hparams *h = &o->h;
    double bc1 = 1.0 - pow(h->beta1, t), bc2 = 1.0 - pow(h->beta2, t);
    vqt_tensor *m = ema(o->state[0], g, h->beta1);
    vqt_tensor *v = ema_sq(o->state[1], g, h->beta2);
    vqt_tensor *perturb = vqt_binary(VQT_DIV, m, sqrt_eps(v, sqrt(bc2), h->eps));
    if (vqt_ndim(o->param) > 1 && vqt_numel(o->param) > 0) {
        vqt_tensor *cc = NULL, *cl = NULL;
        vqt_tensor *pc = adamp_view(o, g, perturb, vqt_size(o->param, 0), &cc);
        vqt_tensor *pl = adamp_view(o, g, perturb, 1, &cl);
        perturb = vqt_where(cc, pc, vqt_where(cl, pl, perturb));
    }
    next[0] = m;
    next[1] = v;
    next[2] = vqt_binary(VQT_ADD, o->param, vqt_binary_s(VQT_MUL, perturb, -o->lr / bc1));
}

/* ---- the step -------------------------------------------------------------------------- */

static const step_fn kernels[VQC_OPT_COUNT] = {
    [VQC_OPT_ADAM] = step_adam,         [VQC_OPT_ADAMW] = step_adam,
    [VQC_OPT_ADAGRAD] = step_adagrad,   [VQC_OPT_ADAMAX] = step_adamax,
    [VQC_OPT_RADAM] = step_radam,       [VQC_OPT_RMSPROP] = step_rmsprop,
    [VQC_OPT_DIFFGRAD] = step_diffgrad, [VQC_OPT_ADAMP] = step_adamp,
};

/* Copies the computed values into the state and param, once all of them exist; with `ok`,
 * each takes where(ok, new, old). */
static int commit(vqc_optim *o, const vqt_tensor **next, const vqt_tensor *ok)
{
    for (int i = 0; i <= o->nstate; i++) {
        vqt_tensor *cur = i < o->nstate ? o->state[i] : o->param;
        if (next[i] && ok)
            next[i] = vqt_where(ok, next[i], cur);
        if (!next[i])
            return vqc_torch_fail("%s step", vqc_optim_name(o->kind));
    }
    for (int i = 0; i < o->nstate; i++)
        if (vqt_copy_(o->state[i], next[i]) != 0)
            return vqc_torch_fail("%s step", vqc_optim_name(o->kind));
    if (vqt_copy_(o->param, next[o->nstate]) != 0)
        return vqc_torch_fail("%s step", vqc_optim_name(o->kind));
    return 0;
}

int vqc_optim_step(vqc_optim *opt, const vqt_tensor *grad)
{
    return vqc_optim_step_if(opt, grad, NULL);
}

int vqc_optim_step_if(vqc_optim *opt, const vqt_tensor *grad, const vqt_tensor *ok)
{
    if (!grad || !same_shape(grad, opt->param))
        return vqc_error_set(VQC_ERR_USAGE,
                             "%s step: the gradient's shape differs from the "
                             "parameter's",
                             vqc_optim_name(opt->kind));
    const vqt_tensor *next[MAX_STATE + 1] = {NULL};
    bool was_enabled = vqt_set_grad_enabled(false);
    vqt_scope_begin();
    kernels[opt->kind](opt, grad, (double)(opt->steps + 1), next);
    int rc = commit(opt, next, ok);
    vqt_scope_end();
    vqt_set_grad_enabled(was_enabled);
    if (rc == 0)
        opt->steps++;
    return rc;
}

/* core/net_loss.c: the training losses on a net's last output (clad_net_loss).
 *
 * On the host each loss is core/loss.c's function, its gradient kept in
 * net->loss_grad.  On a device it is a few kernels of core/device_kernels.h that
 * follow those functions line by line: the spec's inputs (targets, labels,
 * centres) go up, the gradient stays on the device for the backward pass,
 * and only the loss (one double) and what the spec asks back come down.
 * Loss values are sums in double, per row or per slice, then one sum of
 * those (the host sums in one pass: the last bits may differ).
 */
#include "net_internal.h"
#include "device_layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* DEC's clusters: far more than any use, small enough that no size overflows */
#define MAX_DEC_K 65536

/* The refusal of a loss the spec or the net cannot give, else CLAD_OK. */
static clad_status
check_spec(const clad_net *net, const clad_loss_spec *spec)
{
	if (!net->have_forward)
		return clad_fail(CLAD_ERR_INVALID, "loss without a forward pass");
	switch (spec->kind)
	{
		case CLAD_LOSS_MSE:
			if (!spec->target)
				return clad_fail(CLAD_ERR_INVALID, "MSE loss without a target");
			return CLAD_OK;
		case CLAD_LOSS_CROSS_ENTROPY:
			if (!spec->labels || !(spec->T > 0.0f))
				return clad_fail(CLAD_ERR_INVALID, "cross-entropy needs labels and a temperature > 0");
			return CLAD_OK;
		case CLAD_LOSS_DEC_KL:
			if (!spec->centers || spec->K <= 0 || spec->K > MAX_DEC_K || !(spec->alpha > 0.0f))
				return clad_fail(CLAD_ERR_INVALID, "DEC loss needs centres, K in 1..%d and alpha > 0", MAX_DEC_K);
			return CLAD_OK;
		case CLAD_LOSS_SVDD:
			if (!spec->centers)
				return clad_fail(CLAD_ERR_INVALID, "Deep SVDD loss without a centre");
			return CLAD_OK;
	}
	return clad_fail(CLAD_ERR_INVALID, "unknown loss %d", (int) spec->kind);
}

/* Rows whose first largest logit is the label. */
static int
count_correct(const float *logits, const int32_t *labels, int B, int K)
{
	int			correct = 0;

	for (int b = 0; b < B; b++)
		correct += clad_argmax(logits + (size_t) b * K, K) == labels[b];
	return correct;
}

/* The loss on the host: value in *loss, gradient in net->loss_grad. */
static clad_status
host_loss(clad_net *net, const clad_loss_spec *spec, int B, size_t out, float *loss)
{
	size_t		n = (size_t) B * out;
	size_t		need = n + (spec->kind == CLAD_LOSS_DEC_KL ? 2 * (size_t) B * spec->K : 0);
	const float *y = net->act[net->nvals - 1];
	float	   *grad;

	if (need > net->loss_floats)
	{
		float	   *p = realloc(net->loss_grad, sizeof(float) * need);

		if (!p)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory for the loss of a batch of %d", B);
		net->loss_grad = p;
		net->loss_floats = need;
	}
	grad = net->loss_grad;
	memset(grad, 0, sizeof(float) * n);
	switch (spec->kind)
	{
		case CLAD_LOSS_MSE:
			*loss = clad_mse_loss(grad, y, spec->target, n);
			break;
		case CLAD_LOSS_CROSS_ENTROPY:
			*loss = clad_cross_entropy_loss(grad, y, spec->labels, B, (int) out, spec->T);
			if (spec->correct)
				*spec->correct = count_correct(y, spec->labels, B, (int) out);
			break;
		case CLAD_LOSS_DEC_KL:
			{
				float	   *q = grad + n, *p = q + (size_t) B * spec->K;

				clad_dec_soft_assign(q, y, spec->centers, B, spec->K, (int) out, spec->alpha);
				clad_dec_target(p, q, B, spec->K);
				if (spec->dcenters)
					memset(spec->dcenters, 0, sizeof(float) * spec->K * out);
				*loss = clad_dec_kl_loss(grad, spec->dcenters, y, spec->centers, p, B, spec->K,
										 (int) out, spec->alpha);
				break;
			}
		case CLAD_LOSS_SVDD:
			*loss = clad_svdd_loss(grad, y, spec->centers, B, (int) out);
			break;
	}
	return CLAD_OK;
}

/* ---- on a device ---- */

/* The workspace of one loss call, carved from net->d_loss_ws: doubles first. */
typedef struct loss_ws
{
	double	   *part;			/* partial sums of an elementwise loss */
	double	   *rows, *rows2;	/* per-row terms (B each) */
	double	   *colsum;			/* DEC: column sums of q (K) */
	double	   *total;			/* the loss (1) */
	float	   *grad;			/* B x out */
	float	   *in;				/* the spec's input: target (B x out) or centres (K x out) */
	float	   *q, *p;			/* DEC: B x K each */
	float	   *dcent;			/* DEC: K x out */
	int32_t    *labels, *flags; /* cross-entropy: B each */
} loss_ws;

/* Carve (or, with base NULL, measure) the workspace; returns its bytes. */
static size_t
carve(loss_ws *w, char *base, int B, size_t out, int K)
{
	size_t		at = 0;
	/* the most partial sums an elementwise loss reduces through: B*out values */
	size_t		partials = clad_dev_sum_partials(B, 1, out);

#define TAKE(field, type, count) \
	(w->field = base ? (type *) (base + at) : NULL, at += sizeof(type) * (count))
	TAKE(part, double, partials);
	TAKE(rows, double, B);
	TAKE(rows2, double, B);
	TAKE(colsum, double, K);
	/* what comes down, side by side: one download (one wait) per loss */
	TAKE(total, double, 1);
	TAKE(flags, int32_t, B);
	TAKE(dcent, float, (size_t) K * out);
	TAKE(grad, float, (size_t) B * out);
	TAKE(in, float, (size_t) (K > B ? K : B) * out);
	TAKE(q, float, (size_t) B * K);
	TAKE(p, float, (size_t) B * K);
	TAKE(labels, int32_t, B);
#undef TAKE
	return at;
}

/* The device workspace for (B, out, K), grown when needed, carved into w. */
static clad_status
ensure_ws(clad_net *net, loss_ws *w, int B, size_t out, int K)
{
	size_t		bytes = carve(w, NULL, B, out, K);
	clad_status st;

	if (bytes > net->d_loss_bytes)
	{
		net_device_free_loss(net);
		if ((st = net->dev->ops->alloc(net->dev, bytes, &net->d_loss_ws)) != CLAD_OK)
			return st;
		net->d_loss_bytes = bytes;
	}
	carve(w, net->d_loss_ws, B, out, K);
	net->d_loss_grad = w->grad;
	return CLAD_OK;
}

/* w->total = (sum of the n doubles at src) / dn */
static void
sum_rows(clad_device *dev, const loss_ws *w, const double *src, size_t n, double dn)
{
	clad_kargs	a;

	memset(&a, 0, sizeof(a));
	a.dsrc = src;
	a.P = n;
	a.dres = w->total;
	a.dn = dn;
	clad_dev_run(dev, K_REDUCE_FINISH, 1, &a);
}

/* The loss on the device: its gradient stays there (d_loss_grad), the value comes down. */
static clad_status
device_loss(clad_net *net, const clad_loss_spec *spec, float *loss)
{
	clad_device *dev = net->dev;
	const clad_device_ops *ops = dev->ops;
	int			B = net->cur_B;
	size_t		out = net->vals[net->nvals - 1].numel;
	size_t		n = (size_t) B * out;
	int			K = spec->kind == CLAD_LOSS_DEC_KL ? spec->K : 1;
	const float *y = net->d_act[net->nvals - 1];
	loss_ws		w;
	clad_kargs	a;
	double		total;
	clad_status st;

	if ((st = ensure_ws(net, &w, B, out, K)) != CLAD_OK)
		return st;
	ops->zero(dev, w.grad, sizeof(float) * n);
	memset(&a, 0, sizeof(a));
	switch (spec->kind)
	{
		case CLAD_LOSS_MSE:
			if ((st = ops->upload(dev, w.in, spec->target, sizeof(float) * n)) != CLAD_OK)
				return st;
			a.out = w.grad;
			a.x = y;
			a.y = w.in;
			a.dn = (double) n;
			clad_dev_run(dev, K_MSE_GRAD, n, &a);
			clad_dev_channel_sum(dev, w.total, w.part, 3, y, w.in, NULL, NULL, NULL, 1, 1, n, (double) n);
			break;
		case CLAD_LOSS_CROSS_ENTROPY:
			if ((st = ops->upload(dev, w.labels, spec->labels, sizeof(int32_t) * B)) != CLAD_OK)
				return st;
			a.out = w.grad;
			a.x = y;
			a.idx = w.labels;
			a.idx_out = w.flags;
			a.dres = w.rows;
			a.B = B;
			a.C = (int) out;
			a.f[0] = spec->T;
			clad_dev_run(dev, K_CE_ROWS, B, &a);
			sum_rows(dev, &w, w.rows, B, B);
			break;
		case CLAD_LOSS_DEC_KL:
			if ((st = ops->upload(dev, w.in, spec->centers, sizeof(float) * K * out)) != CLAD_OK)
				return st;
			a.x = y;
			a.y = w.in;
			a.B = B;
			a.C = K;
			a.S = out;
			a.f[0] = spec->alpha;
			a.out = w.q;
			clad_dev_run(dev, K_DEC_Q, B, &a);
			a.x = w.q;
			a.dres = w.colsum;
			clad_dev_run(dev, K_DEC_COLSUM, K, &a);
			a.dsrc = w.colsum;
			a.out = w.p;
			clad_dev_run(dev, K_DEC_TARGET, B, &a);
			a.x = y;
			a.w = w.p;
			a.out = w.grad;
			a.dres = w.rows;
			a.dres2 = w.rows2;
			clad_dev_run(dev, K_DEC_ROWS, B, &a);
			if (spec->dcenters)
			{
				ops->zero(dev, w.dcent, sizeof(float) * K * out);
				a.out = w.dcent;
				a.dsrc = w.rows2;
				clad_dev_run(dev, K_DEC_CENTERS, (size_t) K * out, &a);
			}
			sum_rows(dev, &w, w.rows, B, B);
			break;
		case CLAD_LOSS_SVDD:
			if ((st = ops->upload(dev, w.in, spec->centers, sizeof(float) * out)) != CLAD_OK)
				return st;
			a.out = w.grad;
			a.x = y;
			a.y = w.in;
			a.B = B;
			a.S = out;
			clad_dev_run(dev, K_SVDD_GRAD, n, &a);
			clad_dev_channel_sum(dev, w.total, w.part, 4, y, w.in, NULL, NULL, NULL, B, 1, out, B);
			break;
	}
	/*
	 * One download, which waits for the kernels (and everything queued before
	 * them) and reports any failure: the loss, and after it the rows counted
	 * correct or DEC's centre gradient when asked for (carve puts them there).
	 */
	{
		int			want_flags = spec->kind == CLAD_LOSS_CROSS_ENTROPY && spec->correct;
		int			want_dcent = spec->kind == CLAD_LOSS_DEC_KL && spec->dcenters;
		char	   *end = want_dcent ? (char *) (w.dcent + (size_t) K * out) :
			want_flags ? (char *) (w.flags + B) : (char *) (w.total + 1);
		size_t		bytes = (size_t) (end - (char *) w.total);
		char	   *host = malloc(bytes);

		if (!host)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory for a batch of %d", B);
		if ((st = ops->download(dev, host, w.total, bytes)) == CLAD_OK)
		{
			memcpy(&total, host, sizeof(double));
			*loss = (float) total;
			if (want_flags)
			{
				const char *at = host + ((char *) w.flags - (char *) w.total);

				*spec->correct = 0;
				for (int b = 0; b < B; b++)
				{
					int32_t		f;

					memcpy(&f, at + sizeof(int32_t) * b, sizeof(f));
					*spec->correct += f;
				}
			}
			if (want_dcent)
				memcpy(spec->dcenters, host + ((char *) w.dcent - (char *) w.total), sizeof(float) * K * out);
		}
		free(host);
		return st;
	}
}

/* ---- either ---- */

clad_status
clad_net_loss(clad_net *net, const clad_loss_spec *spec, float *loss)
{
	int			B = net->cur_B;
	size_t		out = net->vals[net->nvals - 1].numel;
	clad_status st;

	*loss = NAN;
	if ((st = check_spec(net, spec)) != CLAD_OK)
		return st;
	st = net->dev ? device_loss(net, spec, loss) : host_loss(net, spec, B, out, loss);
	net->have_loss = st == CLAD_OK;
	return st;
}

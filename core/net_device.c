/* core/net_device.c: running a net on a device (device.h).
 *
 * The same walk over the ops as net_host.c's passes, with the layers of
 * device_layers.c on device memory.  The host supplies the input and the
 * output gradient, gets the output and the input gradient back, and draws
 * the random numbers (dropout masks, variational noise) from the net's own
 * generator, so a device run consumes the same stream as a CPU run.
 *
 * The host waits for the device only for a value it needs: the loss (one
 * download per training step), an output, an input gradient, weights
 * brought back.  Forward and backward passes and optimiser steps return
 * once queued; a failure in them is reported by the next call that waits
 * (device_impl.h).
 */
#include "net_internal.h"
#include "device_layers.h"

#include <stdlib.h>
#include <string.h>

#define DEV(net) ((net)->dev)
#define OPS(net) ((net)->dev->ops)

clad_status
net_device_refuse(const clad_net *net, const char *what)
{
	return clad_fail(CLAD_ERR_INVALID, "this net is on device %s: it cannot be %s until it is moved back "
					 "to the host", clad_device_describe(net->dev), what);
}

/* Release device memory p (NULL: nothing). */
static void
dfree(clad_net *net, void *p)
{
	if (p)
		OPS(net)->release(DEV(net), p);
}

void
net_device_free_loss(clad_net *net)
{
	dfree(net, net->d_loss_ws);
	net->d_loss_ws = NULL;
	net->d_loss_grad = NULL;
	net->d_loss_bytes = 0;
}

/* Device activations, gradients and per-op state: dropped when the batch grows. */
static void
device_free_runtime(clad_net *net)
{
	if (net->d_act)
		for (int v = 0; v < net->nvals; v++)
			if (net->vals[v].alias < 0)
				dfree(net, net->d_act[v]);
	if (net->d_gact)
		for (int v = 0; v < net->nvals; v++)
			if (net->vals[v].alias < 0)
				dfree(net, net->d_gact[v]);
	free(net->d_act);
	free(net->d_gact);
	net->d_act = net->d_gact = NULL;
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];

		dfree(net, op->d_save_mean);
		dfree(net, op->d_save_invstd);
		dfree(net, op->d_noise);
		dfree(net, op->d_argmax);
		op->d_save_mean = op->d_save_invstd = op->d_noise = NULL;
		op->d_argmax = NULL;
		free(op->noise);
		op->noise = NULL;
	}
	dfree(net, net->d_scratch);
	net->d_scratch = NULL;
	net->d_scratch_floats = 0;
	free(net->host_out);
	net->host_out = NULL;
	net->host_out_fresh = 0;
	net_device_free_loss(net);
	net->d_cap_B = 0;
	net->d_grads_ready = 0;
	net->have_forward = 0;
}

void
net_device_release(clad_net *net)
{
	if (!net->dev)
		return;
	device_free_runtime(net);
	dfree(net, net->d_params);
	dfree(net, net->d_grads);
	dfree(net, net->d_buffers);
	dfree(net, net->d_opt_m);
	dfree(net, net->d_opt_v);
	net->d_params = net->d_grads = net->d_buffers = net->d_opt_m = net->d_opt_v = NULL;
	net->dev = NULL;
}

/* count x size bytes of device memory in *out. */
static clad_status
dalloc(clad_net *net, size_t count, size_t size, void **out)
{
	size_t		bytes;

	*out = NULL;
	if (clad_mul_size(count, size, &bytes))
		return clad_fail(CLAD_ERR_OVERFLOW, "device allocation too large");
	return OPS(net)->alloc(DEV(net), bytes, out);
}

#define DALLOC(net, n, ptr) dalloc((net), (n), sizeof(*(ptr)), (void **) &(ptr))

/* The geometry of conv op (Conv2d or ConvTranspose2d) for batch B. */
static clad_status
conv_geom(const clad_net *net, const net_op *op, int B, clad_conv_geom *g)
{
	value_info	vi = net->vals[op->in], vo = net->vals[op->out];

	if (op->kind == OP_CONV)
		return clad_conv_geom_init(g, B, vi.C, vi.H, vi.W, vo.C, op->k, op->k, op->stride, op->pad);
	return clad_convt_geom_init(g, B, vi.C, vi.H, vi.W, vo.C, op->k, op->k, op->stride, op->pad);
}

/* The scratch floats an op needs on the device for batch B. */
static size_t
device_op_scratch(const clad_net *net, const net_op *op, int B)
{
	value_info	vi = net->vals[op->in], vo = net->vals[op->out];
	clad_conv_geom g;

	switch (op->kind)
	{
		case OP_CONV:
		case OP_CONVT:
			if (conv_geom(net, op, B, &g) != CLAD_OK)
				return 0;
			return clad_dev_scratch_floats(op->kind == OP_CONV ? CLAD_DEV_CONV : CLAD_DEV_CONVT, &g, B, 0, 0);
		case OP_BN:
			return clad_dev_scratch_floats(CLAD_DEV_BN, NULL, B, vi.C, (size_t) vi.H * vi.W);
		case OP_LINEAR:
			return clad_dev_scratch_floats(CLAD_DEV_LINEAR, NULL, B, vo.C, 1);
		default:
			return 0;
	}
}

/* Device activations and per-op state for batches up to B. */
static clad_status
device_ensure_activations(clad_net *net, int B)
{
	clad_status st = CLAD_OK;
	size_t		need = 0;

	if (B <= net->d_cap_B && net->d_act)
		return CLAD_OK;
	device_free_runtime(net);
	net->d_act = calloc(net->nvals, sizeof(float *));
	net->d_gact = calloc(net->nvals, sizeof(float *));
	net->host_out = malloc(sizeof(float) * B * net->vals[net->nvals - 1].numel);
	if (!net->d_act || !net->d_gact || !net->host_out)
	{
		device_free_runtime(net);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for a batch of %d", B);
	}
	for (int v = 0; v < net->nvals && st == CLAD_OK; v++)
		if (net->vals[v].alias < 0)
			st = DALLOC(net, (size_t) B * net->vals[v].numel, net->d_act[v]);
	for (int v = 0; v < net->nvals; v++)
		if (net->vals[v].alias >= 0)
			net->d_act[v] = net->d_act[net->vals[v].alias];
	for (int i = 0; i < net->nops && st == CLAD_OK; i++)
	{
		net_op	   *op = &net->ops[i];
		size_t		n = (size_t) B * net->vals[op->out].numel;

		if (op->kind == OP_BN &&
			((st = DALLOC(net, net->vals[op->in].C, op->d_save_mean)) != CLAD_OK ||
			 (st = DALLOC(net, net->vals[op->in].C, op->d_save_invstd)) != CLAD_OK))
			break;
		if (op->kind == OP_MAXPOOL && (st = DALLOC(net, n, op->d_argmax)) != CLAD_OK)
			break;
		if (op->kind == OP_DROPOUT || op->kind == OP_REPARAM)
		{
			if ((st = DALLOC(net, n, op->d_noise)) != CLAD_OK)
				break;
			if (!(op->noise = malloc(sizeof(float) * n)))
				st = clad_fail(CLAD_ERR_NOMEM, "out of memory for noise of a batch of %d", B);
		}
		if (device_op_scratch(net, op, B) > need)
			need = device_op_scratch(net, op, B);
	}
	if (st == CLAD_OK && (st = DALLOC(net, need ? need : 1, net->d_scratch)) == CLAD_OK)
		net->d_scratch_floats = need;
	if (st != CLAD_OK)
	{
		device_free_runtime(net);
		return st;
	}
	net->d_cap_B = B;
	return CLAD_OK;
}

/* Device activation gradients for d_cap_B. */
static clad_status
device_ensure_gradients(clad_net *net)
{
	clad_status st = CLAD_OK;

	if (net->d_grads_ready)
		return CLAD_OK;
	for (int v = 0; v < net->nvals && st == CLAD_OK; v++)
		if (net->vals[v].alias < 0)
			st = DALLOC(net, (size_t) net->d_cap_B * net->vals[v].numel, net->d_gact[v]);
	if (st != CLAD_OK)
		return st;
	for (int v = 0; v < net->nvals; v++)
		if (net->vals[v].alias >= 0)
			net->d_gact[v] = net->d_gact[net->vals[v].alias];
	net->d_grads_ready = 1;
	return CLAD_OK;
}

/* Device address of tensor id (parameter or buffer), or NULL for id < 0. */
static float *
dtensor(const clad_net *net, int id)
{
	if (id < 0)
		return NULL;
	return (net->tens[id].is_buffer ? net->d_buffers : net->d_params) + net->tens_off[id];
}

/* Device gradient of parameter id when param_grads, else NULL. */
static float *
dgrad(const clad_net *net, int id, int param_grads)
{
	return param_grads && id >= 0 ? net->d_grads + net->tens_off[id] : NULL;
}

/* Floats of the output of a batch of B. */
static size_t
n_out_floats(const clad_net *net, int B)
{
	return (size_t) B * net->vals[net->nvals - 1].numel;
}

/* Kernel arguments out, x, y, the rest zero. */
static clad_kargs
elementwise(float *out, const float *x, const float *y)
{
	clad_kargs	a;

	memset(&a, 0, sizeof(a));
	a.out = out;
	a.x = x;
	a.y = y;
	return a;
}

/* A max pool's window over its input (B, C, H, W) and output grid: out, x as given */
static clad_kargs
maxpool_args(const clad_net *net, const net_op *op, int B, float *out, const float *x)
{
	value_info	vi = net->vals[op->in], vo = net->vals[op->out];
	clad_kargs	a = elementwise(out, x, NULL);

	a.B = B;
	a.C = vi.C;
	a.H = vi.H;
	a.W = vi.W;
	a.KH = a.KW = op->k;
	a.stride = op->stride;
	a.pad = op->pad;
	a.OH = vo.H;
	a.OW = vo.W;
	return a;
}

/* The forward pass from x, host memory or (x_on_device) device memory. */
static clad_status
device_forward(clad_net *net, const float *x, int x_on_device, int B, clad_mode mode)
{
	clad_device *dev = net->dev;
	size_t		in_bytes = sizeof(float) * B * net->vals[0].numel;
	clad_status st;

	if ((st = device_ensure_activations(net, B)) != CLAD_OK)
		return st;
	if (x_on_device)
		OPS(net)->copy(dev, net->d_act[0], x, in_bytes);
	else if ((st = OPS(net)->upload(dev, net->d_act[0], x, in_bytes)) != CLAD_OK)
		return st;
	net->cur_B = B;
	net->cur_mode = mode;
	net->have_forward = 0;
	net->have_loss = 0;
	net->host_out_fresh = 0;
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		value_info	vi = net->vals[op->in], vo = net->vals[op->out];
		const float *in = net->d_act[op->in];
		float	   *out = net->d_act[op->out];
		size_t		n = (size_t) B * vo.numel;
		clad_kargs	a = elementwise(out, in, NULL);

		if (clad_cancel_requested())
			return clad_fail(CLAD_ERR_CANCELLED, "cancelled");
		switch (op->kind)
		{
			case OP_CONV:
			case OP_CONVT:
				{
					clad_conv_geom g;

					conv_geom(net, op, B, &g);
					if (op->kind == OP_CONV)
						clad_dev_conv2d_forward(dev, out, in, dtensor(net, op->w), dtensor(net, op->b), &g,
												net->d_scratch);
					else
						clad_dev_convt2d_forward(dev, out, in, dtensor(net, op->w), dtensor(net, op->b), &g,
												 net->d_scratch);
					break;
				}
			case OP_BN:
				if (mode == CLAD_TRAIN)
				{
					if (B * vi.H * vi.W < 2)
						return clad_fail(CLAD_ERR_SHAPE,
										 "batch normalisation in training needs more than one value per channel");
					clad_dev_batchnorm_forward_train(dev, out, op->d_save_mean, op->d_save_invstd, in,
													 dtensor(net, op->w), dtensor(net, op->b),
													 dtensor(net, op->rm), dtensor(net, op->rv),
													 B, vi.C, vi.H * vi.W, BN_MOMENTUM, BN_EPS, net->d_scratch);
					a = elementwise(dtensor(net, op->nbt), NULL, NULL);
					a.acc = 1;
					a.f[0] = 1.0f;
					clad_dev_run(dev, K_FILL, 1, &a);
				}
				else
					clad_dev_batchnorm_forward_eval(dev, out, in, dtensor(net, op->w), dtensor(net, op->b),
													dtensor(net, op->rm), dtensor(net, op->rv),
													B, vi.C, vi.H * vi.W, BN_EPS, net->d_scratch);
				break;
			case OP_LINEAR:
				clad_dev_linear_forward(dev, out, in, dtensor(net, op->w), dtensor(net, op->b),
										B, (int) vi.numel, vo.C);
				break;
			case OP_RELU:
				clad_dev_run(dev, K_RELU_FWD, n, &a);
				break;
			case OP_ELU:
				clad_dev_run(dev, K_ELU_FWD, n, &a);
				break;
			case OP_SIGMOID:
				clad_dev_run(dev, K_SIGMOID_FWD, n, &a);
				break;
			case OP_DROPOUT:
				if (mode == CLAD_TRAIN && op->p > 0.0f && !net->deterministic)
				{
					clad_dropout_mask(op->noise, n, op->p, &net->rng);
					if ((st = OPS(net)->upload(dev, op->d_noise, op->noise, sizeof(float) * n)) != CLAD_OK)
						return st;
					a.y = op->d_noise;
					clad_dev_run(dev, K_MUL, n, &a);
				}
				else
				{
					OPS(net)->copy(dev, out, in, sizeof(float) * n);
					a = elementwise(op->d_noise, NULL, NULL);
					a.f[0] = 1.0f;
					clad_dev_run(dev, K_FILL, n, &a);
				}
				break;
			case OP_MAXPOOL:
				a = maxpool_args(net, op, B, out, in);
				a.idx_out = op->d_argmax;
				clad_dev_run(dev, K_MAXPOOL_FWD, n, &a);
				break;
			case OP_AVGPOOL:
				a.S = (size_t) vi.H * vi.W;
				clad_dev_run(dev, K_AVGPOOL_FWD, (size_t) B * vi.C, &a);
				break;
			case OP_ADD:
				a.y = net->d_act[op->in2];
				clad_dev_run(dev, K_ADD, n, &a);
				break;
			case OP_RESHAPE:
				break;			/* shares its input's memory */
			case OP_REPARAM:
				/* the noise on the host, in the CPU pass's order */
				for (size_t j = 0; j < n; j++)
					op->noise[j] = (mode == CLAD_TRAIN && !net->deterministic) ? clad_rng_normal(&net->rng) : 0.0f;
				if ((st = OPS(net)->upload(dev, op->d_noise, op->noise, sizeof(float) * n)) != CLAD_OK)
					return st;
				a.y = op->d_noise;
				a.S = (size_t) vo.C;
				clad_dev_run(dev, K_REPARAM_FWD, n, &a);
				break;
		}
	}
	/*
	 * No wait: the pass stays queued on the device, and the next call that
	 * needs a value (the loss, the output, the input gradient) waits for it
	 * and reports any failure of it (one queued before it came out of the
	 * input's upload above).
	 */
	net->have_forward = 1;
	return CLAD_OK;
}

clad_status
net_device_forward(clad_net *net, const float *x, int B, clad_mode mode)
{
	return device_forward(net, x, 0, B, mode);
}

clad_status
net_device_forward_after(clad_net *net, const clad_net *before, clad_mode mode)
{
	return device_forward(net, before->d_act[before->nvals - 1], 1, before->cur_B, mode);
}

const float *
net_device_output(clad_net *net)
{
	if (!net->have_forward)
		return NULL;
	if (!net->host_out_fresh)
	{
		if (OPS(net)->download(DEV(net), net->host_out, net->d_act[net->nvals - 1],
							   sizeof(float) * n_out_floats(net, net->cur_B)) != CLAD_OK)
			return NULL;
		net->host_out_fresh = 1;
	}
	return net->host_out;
}

/*
 * The backward pass from dout, host memory or (dout_on_device) device memory,
 * or from the loss's gradient (dout NULL).  keep_dx: the input gradient stays
 * in d_gact[0] for the net before; dx non-NULL: it is downloaded there.
 */
static clad_status
device_backward(clad_net *net, const float *dout, int dout_on_device, int param_grads,
				float *dx, int keep_dx)
{
	clad_device *dev = net->dev;
	clad_status st;
	int			B = net->cur_B;
	int			last = net->nvals - 1;

	if ((st = device_ensure_gradients(net)) != CLAD_OK)
		return st;
	for (int v = 0; v < net->nvals; v++)
		if (net->vals[v].alias < 0)
			OPS(net)->zero(dev, net->d_gact[v], sizeof(float) * B * net->vals[v].numel);
	if (!dout)
		OPS(net)->copy(dev, net->d_gact[last], net->d_loss_grad, sizeof(float) * n_out_floats(net, B));
	else if (dout_on_device)
		OPS(net)->copy(dev, net->d_gact[last], dout, sizeof(float) * n_out_floats(net, B));
	else if ((st = OPS(net)->upload(dev, net->d_gact[last], dout, sizeof(float) * n_out_floats(net, B))) != CLAD_OK)
		return st;

	for (int i = net->nops - 1; i >= 0; i--)
	{
		net_op	   *op = &net->ops[i];
		value_info	vi = net->vals[op->in], vo = net->vals[op->out];
		const float *in = net->d_act[op->in];
		const float *out = net->d_act[op->out];
		const float *d = net->d_gact[op->out];
		/* no input gradient for the net's input unless the caller asked for it */
		float	   *din = (op->in == 0 && !dx && !keep_dx) ? NULL : net->d_gact[op->in];
		size_t		n = (size_t) B * vo.numel;
		clad_kargs	a = elementwise(din, d, out);

		if (clad_cancel_requested())
			return clad_fail(CLAD_ERR_CANCELLED, "cancelled");
		switch (op->kind)
		{
			case OP_CONV:
			case OP_CONVT:
				{
					clad_conv_geom g;

					if (!din && !param_grads)
						break;
					conv_geom(net, op, B, &g);
					if (op->kind == OP_CONV)
						clad_dev_conv2d_backward(dev, din, dgrad(net, op->w, param_grads),
												 dgrad(net, op->b, param_grads), d, in, dtensor(net, op->w),
												 &g, net->d_scratch);
					else
						clad_dev_convt2d_backward(dev, din, dgrad(net, op->w, param_grads),
												  dgrad(net, op->b, param_grads), d, in, dtensor(net, op->w),
												  &g, net->d_scratch);
					break;
				}
			case OP_BN:
				if (net->cur_mode == CLAD_TRAIN)
					clad_dev_batchnorm_backward_train(dev, din, dgrad(net, op->w, param_grads),
													  dgrad(net, op->b, param_grads), d, in, op->d_save_mean,
													  op->d_save_invstd, dtensor(net, op->w),
													  B, vi.C, vi.H * vi.W, net->d_scratch);
				else
					clad_dev_batchnorm_backward_eval(dev, din, dgrad(net, op->w, param_grads),
													 dgrad(net, op->b, param_grads), d, in, dtensor(net, op->w),
													 dtensor(net, op->rm), dtensor(net, op->rv),
													 B, vi.C, vi.H * vi.W, BN_EPS, net->d_scratch);
				break;
			case OP_LINEAR:
				clad_dev_linear_backward(dev, din, dgrad(net, op->w, param_grads), dgrad(net, op->b, param_grads),
										 d, in, dtensor(net, op->w), B, (int) vi.numel, vo.C, net->d_scratch);
				break;
			case OP_RELU:
				if (din)
					clad_dev_run(dev, K_RELU_BWD, n, &a);
				break;
			case OP_ELU:
				if (din)
					clad_dev_run(dev, K_ELU_BWD, n, &a);
				break;
			case OP_SIGMOID:
				if (din)
					clad_dev_run(dev, K_SIGMOID_BWD, n, &a);
				break;
			case OP_DROPOUT:
				if (din)
				{
					a.y = op->d_noise;
					a.acc = 1;
					clad_dev_run(dev, K_MUL, n, &a);
				}
				break;
			case OP_MAXPOOL:
				if (din)
				{
					a = maxpool_args(net, op, B, din, d);
					a.idx = op->d_argmax;
					clad_dev_run(dev, K_MAXPOOL_BWD, (size_t) B * vi.numel, &a);
				}
				break;
			case OP_AVGPOOL:
				if (din)
				{
					a.S = (size_t) vi.H * vi.W;
					clad_dev_run(dev, K_AVGPOOL_BWD, (size_t) B * vi.numel, &a);
				}
				break;
			case OP_ADD:
				{
					float	   *din2 = (op->in2 == 0 && !dx && !keep_dx) ? NULL : net->d_gact[op->in2];

					a.y = NULL;
					a.acc = 1;
					if (din)
						clad_dev_run(dev, K_ADD, n, &a);
					a.out = din2;
					if (din2)
						clad_dev_run(dev, K_ADD, n, &a);
					break;
				}
			case OP_RESHAPE:
				break;			/* the gradient memory is shared too */
			case OP_REPARAM:
				if (din)
				{
					a.y = op->d_noise;
					a.S = (size_t) vo.C;
					clad_dev_run(dev, K_REPARAM_BWD, n, &a);
				}
				break;
		}
	}
	/* waits only for the input gradient when asked for it; otherwise the pass stays queued */
	if (dx)
		return OPS(net)->download(dev, dx, net->d_gact[0], sizeof(float) * B * net->vals[0].numel);
	return CLAD_OK;
}

clad_status
net_device_backward(clad_net *net, const float *dout, int param_grads, float *dx)
{
	return device_backward(net, dout, 0, param_grads, dx, 0);
}

clad_status
net_device_backward_through(clad_net *after, clad_net *before, const float *dout, int param_grads)
{
	clad_status st;

	if ((st = device_backward(after, dout, 0, param_grads, NULL, 1)) != CLAD_OK)
		return st;
	return device_backward(before, after->d_gact[0], 1, param_grads, NULL, 0);
}

void
net_device_zero_grad(clad_net *net)
{
	OPS(net)->zero(DEV(net), net->d_grads, sizeof(float) * (net->nparams ? net->nparams : 1));
}

/* Device optimiser state, zeroed on first use as on the host. */
static clad_status
device_opt_state(clad_net *net, int both)
{
	clad_status st = CLAD_OK;

	if (!net->d_opt_m && (st = DALLOC(net, net->nparams ? net->nparams : 1, net->d_opt_m)) == CLAD_OK)
		OPS(net)->zero(DEV(net), net->d_opt_m, sizeof(float) * (net->nparams ? net->nparams : 1));
	if (st == CLAD_OK && both && !net->d_opt_v &&
		(st = DALLOC(net, net->nparams ? net->nparams : 1, net->d_opt_v)) == CLAD_OK)
		OPS(net)->zero(DEV(net), net->d_opt_v, sizeof(float) * (net->nparams ? net->nparams : 1));
	return st;
}

clad_status
net_device_adam_step(clad_net *net, clad_adam *opt)
{
	clad_status st = device_opt_state(net, 1);
	clad_kargs	a;
	float		step_size, bc2_sqrt;

	if (st != CLAD_OK)
		return st;
	clad_adam_next(opt, &step_size, &bc2_sqrt);
	memset(&a, 0, sizeof(a));
	a.out = net->d_params;
	a.out2 = net->d_opt_m;
	a.out3 = net->d_opt_v;
	a.x = net->d_grads;
	a.f[0] = opt->beta1;
	a.f[1] = opt->beta2;
	a.f[2] = opt->eps;
	a.f[3] = opt->weight_decay;
	a.f[4] = step_size;
	a.f[5] = bc2_sqrt;
	clad_dev_run(DEV(net), K_ADAM, net->nparams, &a);
	return CLAD_OK;				/* queued: a failure comes out of the next wait */
}

clad_status
net_device_sgd_step(clad_net *net, clad_sgd *opt)
{
	clad_status st = device_opt_state(net, 0);
	clad_kargs	a;

	if (st != CLAD_OK)
		return st;
	memset(&a, 0, sizeof(a));
	a.mode = opt->step == 0;	/* the first step starts the momentum buffer */
	opt->step++;
	a.out = net->d_params;
	a.out2 = net->d_opt_m;
	a.x = net->d_grads;
	a.f[0] = opt->lr;
	a.f[1] = opt->momentum;
	a.f[2] = opt->weight_decay;
	clad_dev_run(DEV(net), K_SGD, net->nparams, &a);
	return CLAD_OK;				/* queued: a failure comes out of the next wait */
}

clad_status
net_device_sync_host(clad_net *net)
{
	clad_status st;

	if ((st = OPS(net)->download(DEV(net), net->params, net->d_params, sizeof(float) * net->nparams)) != CLAD_OK)
		return st;
	return OPS(net)->download(DEV(net), net->buffers, net->d_buffers, sizeof(float) * net->nbuffers);
}

clad_status
net_device_bring_back(clad_net *net)
{
	clad_status st;
	size_t		np = net->nparams ? net->nparams : 1;

	if ((st = net_device_sync_host(net)) != CLAD_OK ||
		(st = OPS(net)->download(DEV(net), net->grads, net->d_grads, sizeof(float) * net->nparams)) != CLAD_OK)
		return st;
	if (net->d_opt_m && !net->opt_m && !(net->opt_m = calloc(np, sizeof(float))))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for optimiser state");
	if (net->d_opt_v && !net->opt_v && !(net->opt_v = calloc(np, sizeof(float))))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for optimiser state");
	if (net->d_opt_m &&
		(st = OPS(net)->download(DEV(net), net->opt_m, net->d_opt_m, sizeof(float) * net->nparams)) != CLAD_OK)
		return st;
	if (net->d_opt_v &&
		(st = OPS(net)->download(DEV(net), net->opt_v, net->d_opt_v, sizeof(float) * net->nparams)) != CLAD_OK)
		return st;
	return CLAD_OK;
}

clad_status
net_device_send_up(clad_net *net, clad_device *dev)
{
	clad_status st;
	size_t		np = net->nparams ? net->nparams : 1, nb = net->nbuffers ? net->nbuffers : 1;

	net->dev = dev;
	if ((st = DALLOC(net, np, net->d_params)) != CLAD_OK ||
		(st = DALLOC(net, np, net->d_grads)) != CLAD_OK ||
		(st = DALLOC(net, nb, net->d_buffers)) != CLAD_OK ||
		(st = OPS(net)->upload(dev, net->d_params, net->params, sizeof(float) * net->nparams)) != CLAD_OK ||
		(st = OPS(net)->upload(dev, net->d_grads, net->grads, sizeof(float) * net->nparams)) != CLAD_OK ||
		(st = OPS(net)->upload(dev, net->d_buffers, net->buffers, sizeof(float) * net->nbuffers)) != CLAD_OK)
		goto fail;
	if (net->opt_m &&
		((st = DALLOC(net, np, net->d_opt_m)) != CLAD_OK ||
		 (st = OPS(net)->upload(dev, net->d_opt_m, net->opt_m, sizeof(float) * net->nparams)) != CLAD_OK))
		goto fail;
	if (net->opt_v &&
		((st = DALLOC(net, np, net->d_opt_v)) != CLAD_OK ||
		 (st = OPS(net)->upload(dev, net->d_opt_v, net->opt_v, sizeof(float) * net->nparams)) != CLAD_OK))
		goto fail;
	return CLAD_OK;
fail:
	net_device_release(net);
	return st;
}

/* core/net_host.c: a net's forward and backward passes on the host, and the
 * activation memory they run in. */
#include "net_internal.h"

#include <stdlib.h>
#include <string.h>

/* The refusal of a pass that released weights cannot run. */
static clad_status
released_error(clad_net *net, int B)
{
	net->have_forward = 0;
	return clad_fail(CLAD_ERR_INVALID, "this net's weights were released for inference: it runs only "
					 "eval passes of batches up to %d",
					 net->inference_max_B > 0 ? net->inference_max_B : B);
}

void
net_host_free_runtime(clad_net *net)
{
	if (net->act)
		for (int v = 1; v < net->nvals; v++)
			if (net->vals[v].alias < 0)
				free(net->act[v]);
	if (net->gact)
		for (int v = 1; v < net->nvals; v++)
			if (net->vals[v].alias < 0)
				free(net->gact[v]);
	free(net->act);
	free(net->gact);
	net->act = net->gact = NULL;
	for (int i = 0; i < net->nops; i++)
	{
		free(net->ops[i].argmax);
		free(net->ops[i].noise);
		net->ops[i].argmax = NULL;
		net->ops[i].noise = NULL;
	}
	net->cap_B = 0;
	net->grads_ready = 0;
	net->have_forward = 0;
	free(net->loss_grad);
	net->loss_grad = NULL;
	net->loss_floats = 0;
	net->have_loss = 0;
}

/* Scratch budget for batched convolutions: 4M floats (16 MB). */
#define CONV_CHUNK_FLOATS (4u << 20)

/* The geometry of conv op for batch B, with as many images per GEMM as the budget allows. */
void
net_host_conv_geom(const clad_net *net, const net_op *op, int B, clad_conv_geom *g)
{
	value_info	vi = net->vals[op->in], vo = net->vals[op->out];

	if (op->kind == OP_CONV)
	{
		size_t		per_image;

		clad_conv_geom_init(g, B, vi.C, vi.H, vi.W, vo.C, op->k, op->k, op->stride, op->pad);
		per_image = ((size_t) vi.C * op->k * op->k + vo.C) * g->OH * g->OW;
		g->chunk = (int) (CONV_CHUNK_FLOATS / per_image);
		if (g->chunk > B)
			g->chunk = B;
		if (g->chunk < 1)
			g->chunk = 1;
	}
	else
		clad_convt_geom_init(g, B, vi.C, vi.H, vi.W, vo.C, op->k, op->k, op->stride, op->pad);
}

/* Scratch floats op needs at batch B. */
static size_t
op_scratch_floats(const clad_net *net, const net_op *op, int B)
{
	clad_conv_geom g;
	size_t		n;

	if (op->kind != OP_CONV && op->kind != OP_CONVT)
		return 0;
	net_host_conv_geom(net, op, B, &g);
	n = op->kind == OP_CONV ? clad_conv_scratch_floats(&g) : clad_convt_scratch_floats(&g);
	if (op->training_plan && clad_tapconv_training_scratch_floats(op->training_plan, B) > n)
		n = clad_tapconv_training_scratch_floats(op->training_plan, B);
	return n;
}

size_t
net_host_scratch_floats(const clad_net *net, int B)
{
	size_t		need = 0;

	for (int i = 0; i < net->nops; i++)
		if (op_scratch_floats(net, &net->ops[i], B) > need)
			need = op_scratch_floats(net, &net->ops[i], B);
	return need;
}

/*
 * The scratch is aligned to a cache line: the kernels read its channel-last
 * rows as vectors, and rows that straddle cache lines made the transposed
 * panel kernel up to 1.8x slower (measured on an AVX2 CPU).  Its contents
 * live only within one op's pass, so a bigger one need not keep them.
 */
int
net_host_grow_scratch(clad_net *net, size_t need)
{
	void	   *ns;

	if (need <= net->scratch_floats && net->scratch)
		return 1;
	if (posix_memalign(&ns, 64, sizeof(float) * (need ? need : 1)) != 0)
		return 0;
	free(net->scratch);
	net->scratch = ns;
	net->scratch_floats = need;
	return 1;
}

/* Activations, per-op state and scratch for batches up to B. */
static clad_status
ensure_activations(clad_net *net, int B)
{
	if (B <= net->cap_B && net->act)
		return CLAD_OK;
	net_host_free_runtime(net);
	net->act = calloc(net->nvals, sizeof(float *));
	net->gact = calloc(net->nvals, sizeof(float *));
	if (!net->act || !net->gact)
		goto nomem;
	for (int v = 1; v < net->nvals; v++)
		if (net->vals[v].alias < 0)
		{
			size_t		n;

			if (clad_mul_size((size_t) B, net->vals[v].numel, &n) ||
				clad_mul_size(n, sizeof(float), &n))
				return clad_fail(CLAD_ERR_OVERFLOW, "batch of %d too large", B);
			if (!(net->act[v] = malloc(n)))
				goto nomem;
		}
	for (int v = 1; v < net->nvals; v++)
		if (net->vals[v].alias >= 0)
			net->act[v] = net->act[net->vals[v].alias];
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		size_t		n = (size_t) B * net->vals[op->out].numel;

		if (op->kind == OP_MAXPOOL && !(op->argmax = malloc(sizeof(int32_t) * n)))
			goto nomem;
		if ((op->kind == OP_DROPOUT || op->kind == OP_REPARAM) &&
			!(op->noise = malloc(sizeof(float) * n)))
			goto nomem;
	}
	if (!net_host_grow_scratch(net, net_host_scratch_floats(net, B)))
		goto nomem;
	net->cap_B = B;
	return CLAD_OK;
nomem:
	net_host_free_runtime(net);
	return clad_fail(CLAD_ERR_NOMEM, "out of memory for activations of batch %d", B);
}

/* Activation gradients for cap_B. */
static clad_status
ensure_gradients(clad_net *net)
{
	if (net->grads_ready)
		return CLAD_OK;
	for (int v = 1; v < net->nvals; v++)
		if (net->vals[v].alias < 0 &&
			!(net->gact[v] = malloc(sizeof(float) * net->cap_B * net->vals[v].numel)))
			return clad_fail(CLAD_ERR_NOMEM, "out of memory for gradients of batch %d", net->cap_B);
	for (int v = 1; v < net->nvals; v++)
		if (net->vals[v].alias >= 0)
			net->gact[v] = net->gact[net->vals[v].alias];
	net->grads_ready = 1;
	return CLAD_OK;
}

#define TDATA(id) (net->tens[(id)].data)
#define TOPT(id) ((id) >= 0 ? net->tens[(id)].data : NULL)

clad_status
net_host_forward(clad_net *net, const float *x, int B, clad_mode mode)
{
	clad_status st;

	/* refuse before running anything: a training pass would move BatchNorm statistics */
	if (net->released && (mode != CLAD_EVAL || B > net->inference_max_B))
		return released_error(net, B);
	if ((st = ensure_activations(net, B)) != CLAD_OK)
		return st;
	net->act[0] = (float *) x;	/* read only: no op writes its input */
	net->cur_B = B;
	net->cur_mode = mode;
	net->have_forward = 0;
	net->have_loss = 0;
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		value_info	vi = net->vals[op->in], vo = net->vals[op->out];
		const float *in = net->act[op->in];
		float	   *out = net->act[op->out];
		size_t		n = (size_t) B * vo.numel;

		if (clad_cancel_requested())
			return clad_fail(CLAD_ERR_CANCELLED, "cancelled");

		switch (op->kind)
		{
			case OP_CONV:
			case OP_CONVT:
				{
					clad_conv_geom g;

					net_host_conv_geom(net, op, B, &g);
					if (op->inference_plan && mode == CLAD_EVAL && B <= net->inference_max_B)
						clad_tapconv_inference_forward(op->inference_plan, out, in, TOPT(op->b), B,
													   net->scratch);
					else if (op->released)
						return released_error(net, B);
					else if (op->training_plan)
						clad_tapconv_training_forward(op->training_plan, out, in, TDATA(op->w), TOPT(op->b),
													  B, net->scratch);
					else if (op->kind == OP_CONV)
						clad_conv2d_forward(out, in, TDATA(op->w), TOPT(op->b), &g, net->scratch);
					else
						clad_convt2d_forward(out, in, TDATA(op->w), TOPT(op->b), &g, net->scratch);
					break;
				}
			case OP_BN:
				if (mode == CLAD_TRAIN)
				{
					if (B * vi.H * vi.W < 2)
						return clad_fail(CLAD_ERR_SHAPE,
										 "batch normalisation in training needs more than one value per channel");
					clad_batchnorm_forward_train(out, op->save_mean, op->save_invstd, in,
												 TDATA(op->w), TDATA(op->b), TDATA(op->rm), TDATA(op->rv),
												 B, vi.C, vi.H * vi.W, BN_MOMENTUM, BN_EPS);
					TDATA(op->nbt)[0] += 1.0f;
				}
				else
					clad_batchnorm_forward_eval(out, in, TDATA(op->w), TDATA(op->b), TDATA(op->rm),
												TDATA(op->rv), B, vi.C, vi.H * vi.W, BN_EPS);
				break;
			case OP_LINEAR:
				clad_linear_forward(out, in, TDATA(op->w), TOPT(op->b), B, (int) vi.numel, vo.C);
				break;
			case OP_RELU:
				clad_relu_forward(out, in, n);
				break;
			case OP_ELU:
				clad_elu_forward(out, in, n);
				break;
			case OP_SIGMOID:
				clad_sigmoid_forward(out, in, n);
				break;
			case OP_DROPOUT:
				if (mode == CLAD_TRAIN && op->p > 0.0f && !net->deterministic)
					clad_dropout_forward(out, op->noise, in, n, op->p, &net->rng);
				else
				{
					memcpy(out, in, sizeof(float) * n);
					for (size_t j = 0; j < n; j++)
						op->noise[j] = 1.0f;
				}
				break;
			case OP_MAXPOOL:
				{
					clad_pool_geom g;

					clad_pool_geom_init(&g, B, vi.C, vi.H, vi.W, op->k, op->stride, op->pad);
					clad_maxpool_forward(out, op->argmax, in, &g);
					break;
				}
			case OP_AVGPOOL:
				clad_avgpool_forward(out, in, B, vi.C, vi.H * vi.W);
				break;
			case OP_ADD:
				{
					const float *in2 = net->act[op->in2];

					for (size_t j = 0; j < n; j++)
						out[j] = in[j] + in2[j];
					break;
				}
			case OP_RESHAPE:
				break;			/* shares its input's memory */
			case OP_REPARAM:
				{
					int			h = vo.C;

					for (int b = 0; b < B; b++)
						for (int j = 0; j < h; j++)
						{
							float		e = (mode == CLAD_TRAIN && !net->deterministic) ?
								clad_rng_normal(&net->rng) : 0.0f;

							op->noise[(size_t) b * h + j] = e;
							out[(size_t) b * h + j] = in[(size_t) b * 2 * h + j] +
								in[(size_t) b * 2 * h + h + j] * e;
						}
					break;
				}
		}
	}
	net->have_forward = 1;
	return CLAD_OK;
}

#define TGRAD(id) (param_grads && (id) >= 0 ? net->tens[(id)].grad : NULL)

clad_status
net_host_backward(clad_net *net, const float *dout, int param_grads, float *dx)
{
	clad_status st;
	int			B = net->cur_B;
	int			last = net->nvals - 1;

	if (!dout)
		dout = net->loss_grad;
	if (net->released && (param_grads || net->cur_mode != CLAD_EVAL || B > net->inference_max_B))
		return released_error(net, B);
	if ((st = ensure_gradients(net)) != CLAD_OK)
		return st;
	net->gact[0] = dx;
	if (dx)
		memset(dx, 0, sizeof(float) * B * net->vals[0].numel);
	for (int v = 1; v < net->nvals; v++)
		if (net->vals[v].alias < 0)
			memset(net->gact[v], 0, sizeof(float) * B * net->vals[v].numel);
	memcpy(net->gact[last], dout, sizeof(float) * B * net->vals[last].numel);

	for (int i = net->nops - 1; i >= 0; i--)
	{
		net_op	   *op = &net->ops[i];
		value_info	vi = net->vals[op->in], vo = net->vals[op->out];
		const float *in = net->act[op->in];
		const float *out = net->act[op->out];
		const float *d = net->gact[op->out];
		float	   *din = net->gact[op->in];	/* NULL for the input when dx is NULL */
		size_t		n = (size_t) B * vo.numel;

		if (clad_cancel_requested())
		{
			net->gact[0] = NULL;
			return clad_fail(CLAD_ERR_CANCELLED, "cancelled");
		}

		switch (op->kind)
		{
			case OP_CONV:
			case OP_CONVT:
				{
					clad_conv_geom g;

					if (!din && !param_grads)
						break;
					net_host_conv_geom(net, op, B, &g);
					if (op->inference_plan && net->cur_mode == CLAD_EVAL && !param_grads &&
						B <= net->inference_max_B)
					{
						if (din)
							clad_tapconv_inference_backward_input(op->inference_plan, din, d, B,
																  net->scratch);
					}
					else if (op->released)
					{
						net->gact[0] = NULL;
						return released_error(net, B);
					}
					else if (op->training_plan)
						clad_tapconv_training_backward(op->training_plan, din, TGRAD(op->w), TGRAD(op->b),
													   d, in, TDATA(op->w), B, net->scratch);
					else if (op->kind == OP_CONV)
						clad_conv2d_backward(din, TGRAD(op->w), TGRAD(op->b), d, in, TDATA(op->w), &g,
											 net->scratch);
					else
						clad_convt2d_backward(din, TGRAD(op->w), TGRAD(op->b), d, in, TDATA(op->w), &g,
											  net->scratch);
					break;
				}
			case OP_BN:
				if (net->cur_mode == CLAD_TRAIN)
					clad_batchnorm_backward_train(din, TGRAD(op->w), TGRAD(op->b), d, in,
												  op->save_mean, op->save_invstd, TDATA(op->w),
												  B, vi.C, vi.H * vi.W);
				else
					clad_batchnorm_backward_eval(din, TGRAD(op->w), TGRAD(op->b), d, in, TDATA(op->w),
												 TDATA(op->rm), TDATA(op->rv), B, vi.C, vi.H * vi.W,
												 BN_EPS);
				break;
			case OP_LINEAR:
				clad_linear_backward(din, TGRAD(op->w), TGRAD(op->b), d, in, TDATA(op->w),
									 B, (int) vi.numel, vo.C);
				break;
			case OP_RELU:
				if (din)
					clad_relu_backward(din, d, out, n);
				break;
			case OP_ELU:
				if (din)
					clad_elu_backward(din, d, out, n);
				break;
			case OP_SIGMOID:
				if (din)
					clad_sigmoid_backward(din, d, out, n);
				break;
			case OP_DROPOUT:
				if (din)
					clad_dropout_backward(din, d, op->noise, n);
				break;
			case OP_MAXPOOL:
				if (din)
				{
					clad_pool_geom g;

					clad_pool_geom_init(&g, B, vi.C, vi.H, vi.W, op->k, op->stride, op->pad);
					clad_maxpool_backward(din, d, op->argmax, &g);
				}
				break;
			case OP_AVGPOOL:
				if (din)
					clad_avgpool_backward(din, d, B, vi.C, vi.H * vi.W);
				break;
			case OP_ADD:
				{
					float	   *din2 = net->gact[op->in2];

					for (size_t j = 0; j < n; j++)
					{
						if (din)
							din[j] += d[j];
						if (din2)
							din2[j] += d[j];
					}
					break;
				}
			case OP_RESHAPE:
				break;			/* the gradient memory is shared too */
			case OP_REPARAM:
				if (din)
				{
					int			h = vo.C;

					for (int b = 0; b < B; b++)
						for (int j = 0; j < h; j++)
						{
							float		g = d[(size_t) b * h + j];

							din[(size_t) b * 2 * h + j] += g;
							din[(size_t) b * 2 * h + h + j] += g * op->noise[(size_t) b * h + j];
						}
				}
				break;
		}
	}
	net->gact[0] = NULL;
	return CLAD_OK;
}

/* core/net.c: building, running and differentiating a network of layer calls. */
#include "net_internal.h"
#include "bigalloc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Convolutions whose output maps are at most this many pixels get tap plans. */
#define TAP_MAX_POSITIONS 64

/* Nets finished by this thread while set get no weight memory (see net.h). */
static _Thread_local int defer_weights = 0;

void
clad_net_defer_weights(int on)
{
	defer_weights = on;
}


static clad_status
released_error(clad_net *net, int B)
{
	net->have_forward = 0;
	return clad_fail(CLAD_ERR_INVALID, "this net's weights were released for inference: it runs only "
					 "eval passes of batches up to %d", net->tap_max_B > 0 ? net->tap_max_B : B);
}

/* ---------------------------------------------------------------- building */

static int
build_error(clad_net *net, clad_status st, const char *msg)
{
	if (net->err == CLAD_OK)
	{
		net->err = st;
		strncpy(net->errmsg, msg, sizeof(net->errmsg) - 1);
	}
	return -1;
}

clad_net *
clad_net_new(int C, int H, int W)
{
	clad_net   *net = calloc(1, sizeof(clad_net));

	if (!net)
		return NULL;
	clad_rng_seed(&net->rng, 0);
	net->vals = calloc(16, sizeof(value_info));
	net->cap_vals = 16;
	if (!net->vals)
	{
		free(net);
		return NULL;
	}
	if (C <= 0 || H <= 0 || W <= 0 || (size_t) C * H * W > INT32_MAX)
		build_error(net, CLAD_ERR_INVALID, "input shape must be positive");
	net->vals[0] = (value_info) {C, H, W, (size_t) C * H * W, -1};
	net->nvals = 1;
	return net;
}

void
net_free_runtime(clad_net *net)
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

void
clad_net_free(clad_net *net)
{
	if (!net)
		return;
	net_device_release(net);
	net_free_runtime(net);
	net_drop_plans(net);
	for (int i = 0; i < net->nops; i++)
	{
		if (net->ops[i].pairs)
		{
			clad_tapconv_free(net->ops[i].pairs);
			free(net->ops[i].pairs);
		}
		free(net->ops[i].save_mean);
		free(net->ops[i].save_invstd);
	}
	free(net->vals);
	free(net->ops);
	free(net->tens);
	free(net->tens_off);
	if (!net->mapped)
	{
		clad_big_free(net->params, sizeof(float) * (net->nparams ? net->nparams : 1));
		free(net->buffers);
	}
	free(net->grads);
	free(net->opt_m);
	free(net->opt_v);
	free(net->scratch);
	free(net);
}

static int
valid_value(clad_net *net, int v)
{
	if (net->err != CLAD_OK)
		return 0;
	if (net->finished)
		return build_error(net, CLAD_ERR_INVALID, "net already finished"), 0;
	if (v < 0 || v >= net->nvals)
		return build_error(net, CLAD_ERR_INVALID, "no such value"), 0;
	return 1;
}

static int
add_value(clad_net *net, int C, int H, int W, int alias)
{
	size_t		numel;

	if (C <= 0 || H <= 0 || W <= 0 || clad_mul_size((size_t) C * H, (size_t) W, &numel) ||
		numel > INT32_MAX)
		return build_error(net, CLAD_ERR_SHAPE, "layer output shape is empty or too large");
	if (net->nvals == net->cap_vals)
	{
		value_info *nv = realloc(net->vals, sizeof(value_info) * net->cap_vals * 2);

		if (!nv)
			return build_error(net, CLAD_ERR_NOMEM, "out of memory building net");
		net->vals = nv;
		net->cap_vals *= 2;
	}
	net->vals[net->nvals] = (value_info) {C, H, W, numel, alias};
	return net->nvals++;
}

static net_op *
add_op(clad_net *net, op_kind kind, int in)
{
	if (net->nops == net->cap_ops)
	{
		int			cap = net->cap_ops ? net->cap_ops * 2 : 16;
		net_op	   *no = realloc(net->ops, sizeof(net_op) * cap);

		if (!no)
		{
			build_error(net, CLAD_ERR_NOMEM, "out of memory building net");
			return NULL;
		}
		net->ops = no;
		net->cap_ops = cap;
	}
	net->ops[net->nops] = (net_op) {.kind = kind, .in = in, .in2 = -1, .out = -1,
		.w = -1, .b = -1, .rm = -1, .rv = -1, .nbt = -1};
	return &net->ops[net->nops++];
}

/* Register a tensor called name + suffix; returns its id or -1. */
static int
add_tensor(clad_net *net, const char *name, const char *suffix, int ndim,
		   const int64_t *shape, int is_buffer, int is_counter)
{
	clad_tensor_info *t;
	size_t		numel = 1;

	if (net->ntens == net->cap_tens)
	{
		int			cap = net->cap_tens ? net->cap_tens * 2 : 32;
		clad_tensor_info *nt = realloc(net->tens, sizeof(clad_tensor_info) * cap);
		size_t	   *no;

		if (nt)
			net->tens = nt;
		no = realloc(net->tens_off, sizeof(size_t) * cap);
		if (no)
			net->tens_off = no;
		if (!nt || !no)
			return build_error(net, CLAD_ERR_NOMEM, "out of memory building net");
		net->cap_tens = cap;
	}
	t = &net->tens[net->ntens];
	memset(t, 0, sizeof(*t));
	if (!name || strlen(name) + strlen(suffix) + 2 > sizeof(t->name))
		return build_error(net, CLAD_ERR_INVALID, "tensor name too long");
	strcpy(t->name, name);
	strcat(t->name, ".");
	strcat(t->name, suffix);
	for (int i = 0; i < net->ntens; i++)
		if (strcmp(net->tens[i].name, t->name) == 0)
			return build_error(net, CLAD_ERR_INVALID, "duplicate tensor name");
	t->ndim = ndim;
	for (int i = 0; i < ndim; i++)
	{
		t->shape[i] = shape[i];
		numel *= (size_t) shape[i];
	}
	t->numel = numel;
	t->is_buffer = is_buffer;
	t->is_counter = is_counter;
	if (is_buffer)
	{
		net->tens_off[net->ntens] = net->nbuffers;
		net->nbuffers += numel;
	}
	else
	{
		net->tens_off[net->ntens] = net->nparams;
		net->nparams += numel;
	}
	return net->ntens++;
}

int
clad_net_conv(clad_net *net, int in, const char *name, int OC, int k, int stride, int pad, int bias)
{
	value_info	v;
	clad_conv_geom g;
	net_op	   *op;
	int64_t		wshape[4], bshape[1] = {OC};
	int			w, b = -1;

	if (!valid_value(net, in))
		return -1;
	v = net->vals[in];
	if (clad_conv_geom_init(&g, 1, v.C, v.H, v.W, OC, k, k, stride, pad) != CLAD_OK)
		return build_error(net, CLAD_ERR_SHAPE, clad_last_error());
	wshape[0] = OC; wshape[1] = v.C; wshape[2] = k; wshape[3] = k;
	w = add_tensor(net, name, "weight", 4, wshape, 0, 0);
	if (bias)
		b = add_tensor(net, name, "bias", 1, bshape, 0, 0);
	if (!(op = add_op(net, OP_CONV, in)))
		return -1;
	op->w = w;
	op->b = b;
	op->k = k;
	op->stride = stride;
	op->pad = pad;
	return op->out = add_value(net, OC, g.OH, g.OW, -1);
}

int
clad_net_convt(clad_net *net, int in, const char *name, int OC, int k, int stride, int pad, int bias)
{
	value_info	v;
	clad_conv_geom g;
	net_op	   *op;
	int64_t		wshape[4], bshape[1] = {OC};
	int			w, b = -1;

	if (!valid_value(net, in))
		return -1;
	v = net->vals[in];
	if (clad_convt_geom_init(&g, 1, v.C, v.H, v.W, OC, k, k, stride, pad) != CLAD_OK)
		return build_error(net, CLAD_ERR_SHAPE, clad_last_error());
	wshape[0] = v.C; wshape[1] = OC; wshape[2] = k; wshape[3] = k;
	w = add_tensor(net, name, "weight", 4, wshape, 0, 0);
	if (bias)
		b = add_tensor(net, name, "bias", 1, bshape, 0, 0);
	if (!(op = add_op(net, OP_CONVT, in)))
		return -1;
	op->w = w;
	op->b = b;
	op->k = k;
	op->stride = stride;
	op->pad = pad;
	return op->out = add_value(net, OC, g.OH, g.OW, -1);
}

int
clad_net_batchnorm(clad_net *net, int in, const char *name)
{
	value_info	v;
	net_op	   *op;
	int64_t		shape[1];
	int			ids[5];

	if (!valid_value(net, in))
		return -1;
	v = net->vals[in];
	shape[0] = v.C;
	ids[0] = add_tensor(net, name, "weight", 1, shape, 0, 0);
	ids[1] = add_tensor(net, name, "bias", 1, shape, 0, 0);
	ids[2] = add_tensor(net, name, "running_mean", 1, shape, 1, 0);
	ids[3] = add_tensor(net, name, "running_var", 1, shape, 1, 0);
	ids[4] = add_tensor(net, name, "num_batches_tracked", 0, shape, 1, 1);
	if (!(op = add_op(net, OP_BN, in)))
		return -1;
	op->w = ids[0];
	op->b = ids[1];
	op->rm = ids[2];
	op->rv = ids[3];
	op->nbt = ids[4];
	op->save_mean = calloc(v.C, sizeof(float));
	op->save_invstd = calloc(v.C, sizeof(float));
	if (!op->save_mean || !op->save_invstd)
		return build_error(net, CLAD_ERR_NOMEM, "out of memory building net");
	return op->out = add_value(net, v.C, v.H, v.W, -1);
}

int
clad_net_linear(clad_net *net, int in, const char *name, int OUT, int bias)
{
	net_op	   *op;
	int64_t		wshape[2], bshape[1] = {OUT};
	int			w, b = -1;

	if (!valid_value(net, in))
		return -1;
	if (OUT <= 0)
		return build_error(net, CLAD_ERR_INVALID, "linear layer needs a positive output size");
	wshape[0] = OUT;
	wshape[1] = (int64_t) net->vals[in].numel;
	w = add_tensor(net, name, "weight", 2, wshape, 0, 0);
	if (bias)
		b = add_tensor(net, name, "bias", 1, bshape, 0, 0);
	if (!(op = add_op(net, OP_LINEAR, in)))
		return -1;
	op->w = w;
	op->b = b;
	return op->out = add_value(net, OUT, 1, 1, -1);
}

static int
add_same_shape(clad_net *net, int in, op_kind kind, float p)
{
	net_op	   *op;
	value_info	v;

	if (!valid_value(net, in))
		return -1;
	v = net->vals[in];
	if (!(op = add_op(net, kind, in)))
		return -1;
	op->p = p;
	return op->out = add_value(net, v.C, v.H, v.W, -1);
}

int
clad_net_relu(clad_net *net, int in)
{
	return add_same_shape(net, in, OP_RELU, 0.0f);
}

int
clad_net_elu(clad_net *net, int in)
{
	return add_same_shape(net, in, OP_ELU, 0.0f);
}

int
clad_net_sigmoid(clad_net *net, int in)
{
	return add_same_shape(net, in, OP_SIGMOID, 0.0f);
}

int
clad_net_dropout(clad_net *net, int in, float p)
{
	if (!(p >= 0.0f && p < 1.0f))
		return build_error(net, CLAD_ERR_INVALID, "dropout probability must be in [0, 1)");
	return add_same_shape(net, in, OP_DROPOUT, p);
}

int
clad_net_maxpool(clad_net *net, int in, int k, int stride, int pad)
{
	value_info	v;
	clad_pool_geom g;
	net_op	   *op;

	if (!valid_value(net, in))
		return -1;
	v = net->vals[in];
	if (clad_pool_geom_init(&g, 1, v.C, v.H, v.W, k, stride, pad) != CLAD_OK)
		return build_error(net, CLAD_ERR_SHAPE, clad_last_error());
	if (!(op = add_op(net, OP_MAXPOOL, in)))
		return -1;
	op->k = k;
	op->stride = stride;
	op->pad = pad;
	return op->out = add_value(net, v.C, g.OH, g.OW, -1);
}

int
clad_net_avgpool(clad_net *net, int in)
{
	net_op	   *op;

	if (!valid_value(net, in))
		return -1;
	if (!(op = add_op(net, OP_AVGPOOL, in)))
		return -1;
	return op->out = add_value(net, net->vals[in].C, 1, 1, -1);
}

int
clad_net_add(clad_net *net, int a, int b)
{
	net_op	   *op;
	value_info	va, vb;

	if (!valid_value(net, a) || !valid_value(net, b))
		return -1;
	va = net->vals[a];
	vb = net->vals[b];
	if (va.C != vb.C || va.H != vb.H || va.W != vb.W)
		return build_error(net, CLAD_ERR_SHAPE, "residual add of different shapes");
	if (!(op = add_op(net, OP_ADD, a)))
		return -1;
	op->in2 = b;
	return op->out = add_value(net, va.C, va.H, va.W, -1);
}

int
clad_net_reshape(clad_net *net, int in, int C, int H, int W)
{
	net_op	   *op;
	int			root;

	if (!valid_value(net, in))
		return -1;
	if ((size_t) C * H * W != net->vals[in].numel || C <= 0 || H <= 0 || W <= 0)
		return build_error(net, CLAD_ERR_SHAPE, "reshape changes the element count");
	if (in == 0)
		return build_error(net, CLAD_ERR_INVALID, "reshape of the input is not supported");
	root = net->vals[in].alias >= 0 ? net->vals[in].alias : in;
	if (!(op = add_op(net, OP_RESHAPE, in)))
		return -1;
	return op->out = add_value(net, C, H, W, root);
}

int
clad_net_reparam(clad_net *net, int in)
{
	net_op	   *op;
	value_info	v;

	if (!valid_value(net, in))
		return -1;
	v = net->vals[in];
	if (v.H != 1 || v.W != 1 || v.C % 2 != 0)
		return build_error(net, CLAD_ERR_SHAPE, "reparameterisation needs a (2h,1,1) input");
	if (!(op = add_op(net, OP_REPARAM, in)))
		return -1;
	return op->out = add_value(net, v.C / 2, 1, 1, -1);
}

static size_t op_scratch_floats(const clad_net *net, const net_op *op, int B);
static void op_conv_geom(const clad_net *net, const net_op *op, int B, clad_conv_geom *g);

int
clad_net_value_channels(const clad_net *net, int v)
{
	return v >= 0 && v < net->nvals ? net->vals[v].C : 0;
}

clad_status
clad_net_finish(clad_net *net)
{
	size_t		scratch = 0;

	if (net->err != CLAD_OK)
		return clad_fail(net->err, "%s", net->errmsg);
	if (net->nops == 0)
		return clad_fail(CLAD_ERR_INVALID, "net has no layers");
	if (defer_weights)
	{
		/* no weights until clad_net_use_mapped; nothing runs before (released, no plans) */
		net->weightless = 1;
		net->released = 1;
	}
	else
	{
		/* zeroed; a big array in huge pages (bigalloc.h) */
		net->params = clad_big_alloc(sizeof(float) * (net->nparams ? net->nparams : 1));
		net->grads = calloc(net->nparams ? net->nparams : 1, sizeof(float));
		net->buffers = calloc(net->nbuffers ? net->nbuffers : 1, sizeof(float));
		if (!net->params || !net->grads || !net->buffers)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory allocating %zu parameters", net->nparams);
	}
	for (int i = 0; i < net->ntens && !net->weightless; i++)
	{
		clad_tensor_info *t = &net->tens[i];

		if (t->is_buffer)
			t->data = net->buffers + net->tens_off[i];
		else
		{
			t->data = net->params + net->tens_off[i];
			t->grad = net->grads + net->tens_off[i];
		}
	}
	/* BatchNorm's running variance starts at 1 (its gamma is set with the other weights) */
	for (int i = 0; i < net->nops && !net->weightless; i++)
		if (net->ops[i].kind == OP_BN)
		{
			clad_tensor_info *rv = &net->tens[net->ops[i].rv];

			for (size_t j = 0; j < rv->numel; j++)
				rv->data[j] = 1.0f;
		}
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];

		if (op->kind == OP_CONV)
		{
			clad_conv_geom g;

			/* small maps with enough channels for a GEMM per tap: see tapconv.h */
			op_conv_geom(net, op, 1, &g);
			if (g.OH * g.OW <= TAP_MAX_POSITIONS && g.C >= 16 && g.KH * g.KW > 1 &&
				g.KH * g.KW <= CLAD_TAPCONV_DENSE_MAX_TAPS)
			{
				clad_status st;

				if (!(op->pairs = malloc(sizeof(clad_tapconv))))
					return clad_fail(CLAD_ERR_NOMEM, "out of memory planning convolutions");
				if ((st = clad_tapconv_build(op->pairs, &g, NULL)) != CLAD_OK)
				{
					free(op->pairs);
					op->pairs = NULL;
					return st;
				}
			}
		}
		if (op->kind == OP_BN && !net->weightless)
			for (int64_t j = 0; j < net->tens[op->w].shape[0]; j++)
				net->tens[op->w].data[j] = 1.0f;
		if (op_scratch_floats(net, op, 1) > scratch)
			scratch = op_scratch_floats(net, op, 1);
	}
	net->scratch_floats = scratch;
	net->scratch = malloc(sizeof(float) * (scratch ? scratch : 1));
	if (!net->scratch)
		return clad_fail(CLAD_ERR_NOMEM, "out of memory allocating convolution scratch");
	net->finished = 1;
	return CLAD_OK;
}

/* ---------------------------------------------------------------- running */

/* Scratch budget for batched convolutions: 4M floats (16 MB). */
#define CONV_CHUNK_FLOATS (4u << 20)

/* The geometry of conv op for batch B, with as many images per GEMM as the budget allows. */
static void
op_conv_geom(const clad_net *net, const net_op *op, int B, clad_conv_geom *g)
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

static size_t
op_scratch_floats(const clad_net *net, const net_op *op, int B)
{
	clad_conv_geom g;
	size_t		n;

	if (op->kind != OP_CONV && op->kind != OP_CONVT)
		return 0;
	op_conv_geom(net, op, B, &g);
	n = op->kind == OP_CONV ? clad_conv_scratch_floats(&g) : clad_convt_scratch_floats(&g);
	if (op->pairs && clad_tapconv_dense_scratch_floats(op->pairs, B) > n)
		n = clad_tapconv_dense_scratch_floats(op->pairs, B);
	return n;
}

static clad_status
ensure_activations(clad_net *net, int B)
{
	if (B <= net->cap_B && net->act)
		return CLAD_OK;
	net_free_runtime(net);
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
	{
		size_t		need = 0;

		for (int i = 0; i < net->nops; i++)
			if (op_scratch_floats(net, &net->ops[i], B) > need)
				need = op_scratch_floats(net, &net->ops[i], B);
		if (need > net->scratch_floats)
		{
			float	   *ns = realloc(net->scratch, sizeof(float) * need);

			if (!ns)
				goto nomem;
			net->scratch = ns;
			net->scratch_floats = need;
		}
	}
	net->cap_B = B;
	return CLAD_OK;
nomem:
	net_free_runtime(net);
	return clad_fail(CLAD_ERR_NOMEM, "out of memory for activations of batch %d", B);
}

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
clad_net_forward(clad_net *net, const float *x, int B, clad_mode mode)
{
	clad_status st;

	if (!net->finished)
		return clad_fail(CLAD_ERR_INVALID, "net not finished");
	if (B <= 0)
		return clad_fail(CLAD_ERR_INVALID, "batch size must be positive");
	if (net->dev)
		return net_device_forward(net, x, 0, B, mode);
	/* refuse before running anything: a training pass would move BatchNorm statistics */
	if (net->released && (mode != CLAD_EVAL || B > net->tap_max_B))
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

					op_conv_geom(net, op, B, &g);
					if (op->tap && mode == CLAD_EVAL && B <= net->tap_max_B)
						clad_tapconv_forward(op->tap, out, in, TOPT(op->b), B, net->scratch);
					else if (op->released)
						return released_error(net, B);
					else if (op->pairs)
						clad_tapconv_forward_dense(op->pairs, out, in, TDATA(op->w), TOPT(op->b), B,
												   net->scratch);
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

const float *
clad_net_output(const clad_net *net)
{
	if (net->dev)
	{
		clad_net   *n = (clad_net *) net;	/* the lazy copy is a cache */

		if (!net->have_forward)
			return NULL;
		if (!net->host_out_fresh)
		{
			if (net->dev->ops->download(net->dev, n->host_out, net->d_act[net->nvals - 1],
										sizeof(float) * net->cur_B * net->vals[net->nvals - 1].numel) != CLAD_OK)
				return NULL;
			n->host_out_fresh = 1;
		}
		return net->host_out;
	}
	return net->act ? net->act[net->nvals - 1] : NULL;
}

size_t
clad_net_out_numel(const clad_net *net)
{
	return net->vals[net->nvals - 1].numel;
}

void
clad_net_in_shape(const clad_net *net, int *C, int *H, int *W)
{
	*C = net->vals[0].C;
	*H = net->vals[0].H;
	*W = net->vals[0].W;
}

/* the two nets chain: before's output is net's input, at before's batch */
static clad_status
check_chain(const clad_net *net, const clad_net *before)
{
	if (!before->have_forward)
		return clad_fail(CLAD_ERR_INVALID, "no forward pass of the net before");
	if (before->vals[before->nvals - 1].numel != net->vals[0].numel)
		return clad_fail(CLAD_ERR_SHAPE, "the net before outputs %zu values per image, this net takes %zu",
						 before->vals[before->nvals - 1].numel, net->vals[0].numel);
	if (net->dev != before->dev)
		return clad_fail(CLAD_ERR_INVALID, "the two nets are not on the same device");
	return CLAD_OK;
}

clad_status
clad_net_forward_after(clad_net *net, const clad_net *before, clad_mode mode)
{
	const float *x;
	clad_status st;

	if ((st = check_chain(net, before)) != CLAD_OK)
		return st;
	if (net->dev && net->finished)
		return net_device_forward(net, before->d_act[before->nvals - 1], 1, before->cur_B, mode);
	if (!(x = clad_net_output(before)))
		return clad_fail(CLAD_ERR_DEVICE, "%s", clad_last_error());
	return clad_net_forward(net, x, before->cur_B, mode);
}

clad_status
clad_net_backward_through(clad_net *after, clad_net *before, const float *dout, int param_grads,
						  float *scratch)
{
	clad_status st;

	if ((st = check_chain(after, before)) != CLAD_OK)
		return st;
	if (after->cur_B != before->cur_B || !after->have_forward)
		return clad_fail(CLAD_ERR_INVALID, "backward through two nets without their forward passes");
	if (after->dev)
	{
		if (!dout && !after->have_loss)
			return clad_fail(CLAD_ERR_INVALID, "backward from the loss without a loss since the forward pass");
		if ((st = net_device_backward(after, dout, 0, param_grads, NULL, 1)) != CLAD_OK)
			return st;
		return net_device_backward(before, after->d_gact[0], 1, param_grads, NULL, 0);
	}
	if ((st = clad_net_backward(after, dout, param_grads, scratch)) != CLAD_OK)
		return st;
	return clad_net_backward(before, scratch, param_grads, NULL);
}

void
clad_net_zero_grad(clad_net *net)
{
	if (net->dev)
	{
		net_device_zero_grad(net);
		return;
	}
	if (net->grads)
		memset(net->grads, 0, sizeof(float) * net->nparams);
}

#define TGRAD(id) (param_grads && (id) >= 0 ? net->tens[(id)].grad : NULL)

clad_status
clad_net_backward(clad_net *net, const float *dout, int param_grads, float *dx)
{
	clad_status st;
	int			B = net->cur_B;
	int			last = net->nvals - 1;

	if (!net->have_forward)
		return clad_fail(CLAD_ERR_INVALID, "backward without a forward pass");
	if (!dout && !net->have_loss)
		return clad_fail(CLAD_ERR_INVALID, "backward from the loss without a loss since the forward pass");
	if (net->dev)
		return net_device_backward(net, dout, 0, param_grads, dx, 0);
	if (!dout)
		dout = net->loss_grad;
	if (net->released && (param_grads || net->cur_mode != CLAD_EVAL || B > net->tap_max_B))
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
					op_conv_geom(net, op, B, &g);
					if (op->tap && net->cur_mode == CLAD_EVAL && !param_grads && B <= net->tap_max_B)
					{
						if (din)
							clad_tapconv_backward_input(op->tap, din, d, B, net->scratch);
					}
					else if (op->released)
					{
						net->gact[0] = NULL;
						return released_error(net, B);
					}
					else if (op->pairs)
						clad_tapconv_backward_dense(op->pairs, din, TGRAD(op->w), TGRAD(op->b), d, in,
													TDATA(op->w), B, net->scratch);
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

/* ---------------------------------------------------------------- parameters */

size_t
clad_net_num_tensors(const clad_net *net)
{
	return (size_t) net->ntens;
}

const clad_tensor_info *
clad_net_tensor(const clad_net *net, size_t i)
{
	return i < (size_t) net->ntens ? &net->tens[i] : NULL;
}

const clad_tensor_info *
clad_net_find(const clad_net *net, const char *name)
{
	for (int i = 0; i < net->ntens; i++)
		if (strcmp(net->tens[i].name, name) == 0)
			return &net->tens[i];
	return NULL;
}

size_t
clad_net_num_params(const clad_net *net)
{
	return net->nparams;
}

float *
clad_net_params(clad_net *net)
{
	return net->params;
}

float *
clad_net_grads(clad_net *net)
{
	return net->grads;
}

static clad_status
ensure_opt_state(clad_net *net, int both)
{
	if (!net->opt_m && !(net->opt_m = calloc(net->nparams ? net->nparams : 1, sizeof(float))))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for optimiser state");
	if (both && !net->opt_v && !(net->opt_v = calloc(net->nparams ? net->nparams : 1, sizeof(float))))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for optimiser state");
	return CLAD_OK;
}

clad_status
clad_net_adam_step(clad_net *net, clad_adam *opt)
{
	clad_status st;

	if (net->dev)
		return net_device_adam_step(net, opt);
	if (net->released)
		return clad_fail(CLAD_ERR_INVALID, "weights were released for inference: the net cannot be trained");
	st = ensure_opt_state(net, 1);
	net_drop_plans(net);
	if (st == CLAD_OK)
		clad_adam_step(opt, net->params, net->grads, net->opt_m, net->opt_v, net->nparams);
	return st;
}

clad_status
clad_net_sgd_step(clad_net *net, clad_sgd *opt)
{
	clad_status st;

	if (net->dev)
		return net_device_sgd_step(net, opt);
	if (net->released)
		return clad_fail(CLAD_ERR_INVALID, "weights were released for inference: the net cannot be trained");
	st = ensure_opt_state(net, 0);
	net_drop_plans(net);
	if (st == CLAD_OK)
		clad_sgd_step(opt, net->params, net->grads, net->opt_m, net->nparams);
	return st;
}

clad_status
clad_net_save(const clad_net *net, clad_st_writer *w, const char *prefix)
{
	char		name[256];

	if (net->dev)
		return net_device_refuse(net, "saved");
	if (net->released)
		return clad_fail(CLAD_ERR_INVALID, "weights were released for inference: the net cannot be saved");

	for (int i = 0; i < net->ntens; i++)
	{
		const clad_tensor_info *t = &net->tens[i];
		clad_status st;

		if (snprintf(name, sizeof(name), "%s%s", prefix ? prefix : "", t->name) >= (int) sizeof(name))
			return clad_fail(CLAD_ERR_INVALID, "tensor name too long");
		if (t->is_counter)
		{
			int64_t		c = (int64_t) t->data[0];

			st = clad_st_writer_add(w, name, CLAD_DTYPE_I64, 0, NULL, &c);
		}
		else
			st = clad_st_writer_add(w, name, CLAD_DTYPE_F32, t->ndim, t->shape, t->data);
		if (st != CLAD_OK)
			return st;
	}
	return CLAD_OK;
}

static clad_status
net_load(clad_net *net, const clad_st_file *f, const char *prefix, int in_place)
{
	char		name[256];
	float	   *stage_p, *stage_b;

	if (net->dev)
		return net_device_refuse(net, "loaded into");
	if (net->mapped || net->weightless)
		return clad_fail(CLAD_ERR_INVALID, "this net scores from mapped weights: they cannot be loaded over");

	/*
	 * Validate everything into copies first, so an error changes nothing;
	 * in place (half the memory traffic), an error leaves zeros.
	 */
	if (in_place)
	{
		stage_p = net->params;
		stage_b = net->buffers;
	}
	else
	{
		stage_p = malloc(sizeof(float) * (net->nparams ? net->nparams : 1));
		stage_b = malloc(sizeof(float) * (net->nbuffers ? net->nbuffers : 1));
		if (!stage_p || !stage_b)
		{
			free(stage_p);
			free(stage_b);
			return clad_fail(CLAD_ERR_NOMEM, "out of memory loading weights");
		}
	}
	for (int i = 0; i < net->ntens; i++)
	{
		const clad_tensor_info *t = &net->tens[i];
		float	   *dst = (t->is_buffer ? stage_b : stage_p) + net->tens_off[i];
		clad_status st = CLAD_OK;

		if (snprintf(name, sizeof(name), "%s%s", prefix ? prefix : "", t->name) >= (int) sizeof(name))
			st = clad_fail(CLAD_ERR_INVALID, "tensor name too long");
		else if (t->is_counter)
		{
			const clad_st_tensor *s = clad_st_find(f, name);
			int64_t		c;

			if (!s)
				st = clad_fail(CLAD_ERR_FORMAT, "model lacks tensor \"%s\"", name);
			else if (s->dtype != CLAD_DTYPE_I64 || s->numel != 1 || s->ndim > 1)
				st = clad_fail(CLAD_ERR_FORMAT, "tensor \"%s\" must be a single I64", name);
			else
			{
				memcpy(&c, s->data, sizeof(c));
				dst[0] = (float) c;
			}
		}
		else
			st = clad_st_read_f32(f, name, t->ndim, t->shape, dst);
		if (st != CLAD_OK)
		{
			if (stage_p == net->params)
			{
				memset(net->params, 0, sizeof(float) * net->nparams);
				memset(net->buffers, 0, sizeof(float) * net->nbuffers);
			}
			else
			{
				free(stage_p);
				free(stage_b);
			}
			return st;
		}
	}
	net_drop_plans(net);
	if (stage_p != net->params)
	{
		memcpy(net->params, stage_p, sizeof(float) * net->nparams);
		memcpy(net->buffers, stage_b, sizeof(float) * net->nbuffers);
		free(stage_p);
		free(stage_b);
	}
	for (int i = 0; i < net->nops; i++)
		net->ops[i].released = 0;
	net->released = 0;
	return CLAD_OK;
}

clad_status
clad_net_load(clad_net *net, const clad_st_file *f, const char *prefix)
{
	return net_load(net, f, prefix, 0);
}

clad_status
clad_net_load_in_place(clad_net *net, const clad_st_file *f, const char *prefix)
{
	return net_load(net, f, prefix, 1);
}

size_t
clad_net_release_planned_weights(clad_net *net)
{
	size_t		page = (size_t) sysconf(_SC_PAGESIZE), total = 0;

	if (net->dev)
		return 0;
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		uintptr_t	start, end;

		if (!op->tap || op->released || op->w < 0 || net->mapped)
			continue;
		/* the whole pages inside the weight tensor; its edges stay */
		start = ((uintptr_t) TDATA(op->w) + page - 1) & ~(uintptr_t) (page - 1);
		end = ((uintptr_t) (TDATA(op->w) + net->tens[op->w].numel)) & ~(uintptr_t) (page - 1);
		if (end > start)
		{
#ifdef MADV_NOHUGEPAGE
			/* else khugepaged may collapse the range into huge pages again, zeros and all */
			(void) madvise((void *) start, end - start, MADV_NOHUGEPAGE);
#endif
			if (madvise((void *) start, end - start, MADV_DONTNEED) == 0)
				total += end - start;
		}
		op->released = 1;
		net->released = 1;
	}
	return total;
}

void
clad_net_seed(clad_net *net, uint64_t seed)
{
	clad_rng_seed(&net->rng, seed);
}

void
clad_net_set_stochastic(clad_net *net, int on)
{
	net->deterministic = !on;
}


void
net_drop_plans(clad_net *net)
{
	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].tap)
		{
			clad_tapconv_free(net->ops[i].tap);
			free(net->ops[i].tap);
			net->ops[i].tap = NULL;
		}
	net->tap_max_B = 0;
}

/* Whether conv op gets a packed tap plan for inference; its geometry in g. */
static int
packed_plan_geom(const clad_net *net, const net_op *op, clad_conv_geom *g)
{
	if (op->kind != OP_CONV)
		return 0;
	op_conv_geom(net, op, 1, g);
	return g->OH * g->OW <= TAP_MAX_POSITIONS && clad_tapconv_supported(g);
}

/* Grow the shared scratch to what the tap plans need for batches up to max_B. */
static clad_status
plan_scratch(clad_net *net, int max_B)
{
	size_t		need = 0;

	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].tap && clad_tapconv_scratch_floats(net->ops[i].tap, max_B) > need)
			need = clad_tapconv_scratch_floats(net->ops[i].tap, max_B);
	if (need > net->scratch_floats)
	{
		float	   *ns = realloc(net->scratch, sizeof(float) * need);

		if (!ns)
			return clad_fail(CLAD_ERR_NOMEM, "out of memory for convolution scratch");
		net->scratch = ns;
		net->scratch_floats = need;
	}
	return CLAD_OK;
}

clad_status
clad_net_prepare_inference(clad_net *net, int max_B)
{
	clad_status st;

	if (!net->finished || max_B < 1)
		return clad_fail(CLAD_ERR_INVALID, "prepare_inference needs a finished net and max_B >= 1");
	if (net->dev)
		return net_device_refuse(net, "prepared for CPU inference");
	if (net->released)
		return clad_fail(CLAD_ERR_INVALID, "weights were released: load them again before preparing");
	net_drop_plans(net);
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		clad_conv_geom g;

		if (!packed_plan_geom(net, op, &g))
			continue;
		if (!(op->tap = malloc(sizeof(clad_tapconv))))
		{
			net_drop_plans(net);
			return clad_fail(CLAD_ERR_NOMEM, "out of memory planning convolutions");
		}
		if ((st = clad_tapconv_build(op->tap, &g, TDATA(op->w))) != CLAD_OK)
		{
			free(op->tap);
			op->tap = NULL;
			net_drop_plans(net);
			return st;
		}
	}
	if ((st = plan_scratch(net, max_B)) != CLAD_OK)
	{
		net_drop_plans(net);
		return st;
	}
	net->tap_max_B = max_B;
	return CLAD_OK;
}

/* ---------------------------------------------------------------- mapped weights */

int
clad_net_inference_batch(const clad_net *net)
{
	return net->tap_max_B;
}

size_t
clad_net_num_buffers(const clad_net *net)
{
	return net->nbuffers;
}

const float *
clad_net_buffer_data(const clad_net *net)
{
	return net->buffers;
}

size_t
clad_net_panel_floats(const clad_net *net)
{
	size_t		n = 0;

	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].tap)
			n += net->ops[i].tap->panels_bytes / sizeof(float);
	return n;
}

const float *
clad_net_panel_block(const clad_net *net, int *at, size_t *floats)
{
	for (; *at < net->nops; (*at)++)
		if (net->ops[*at].tap)
		{
			const clad_tapconv *tc = net->ops[(*at)++].tap;

			*floats = tc->panels_bytes / sizeof(float);
			return tc->panels;
		}
	*floats = 0;
	return NULL;
}

/* Whether tensor ti is a weight that a packed tap plan replaces (never read by the passes it serves). */
static int
replaced_by_plan(const clad_net *net, int ti)
{
	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].tap && net->ops[i].w == ti)
			return 1;
	return 0;
}

size_t
clad_net_kept_param_floats(const clad_net *net)
{
	size_t		n = 0;

	for (int i = 0; i < net->ntens; i++)
		if (!net->tens[i].is_buffer && !replaced_by_plan(net, i))
			n += net->tens[i].numel;
	return n;
}

const float *
clad_net_kept_param_block(const clad_net *net, int *at, size_t *floats)
{
	for (; *at < net->ntens; (*at)++)
		if (!net->tens[*at].is_buffer && !replaced_by_plan(net, *at))
		{
			const clad_tensor_info *t = &net->tens[(*at)++];

			*floats = t->numel;
			return t->data;
		}
	*floats = 0;
	return NULL;
}

/*
 * n floats of zeros, read only, for the weights a mapped net does not keep:
 * anonymous pages that cost nothing until read (and nothing reads them; the
 * zeros only match what released weights read as).  Shared by every net of
 * the process; a bigger request maps a bigger region (the old one stays: it
 * holds no memory).
 */
static const float *
zero_floats(size_t n)
{
	static void *region = NULL;
	static size_t region_floats = 0;

	if (n > region_floats)
	{
		void	   *p = mmap(NULL, sizeof(float) * n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return NULL;
		region = p;
		region_floats = n;
	}
	return region;
}

clad_status
clad_net_use_mapped(clad_net *net, int max_B, const float *params, size_t param_floats,
					const float *buffers, const float *panels, size_t panel_floats)
{
	size_t		at = 0;
	const float *zeros;
	clad_status st;

	if (!net->finished || max_B < 1 || (net->released && !net->weightless) || net->mapped || net->tap_max_B)
		return clad_fail(CLAD_ERR_INVALID, "use_mapped needs a finished, unprepared net and max_B >= 1");
	if (net->dev)
		return net_device_refuse(net, "given mapped weights");
	/* the plans first: nothing of the net changes until they all fit */
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		clad_conv_geom g;
		size_t		bytes;

		if (!packed_plan_geom(net, op, &g))
			continue;
		if (!(op->tap = malloc(sizeof(clad_tapconv))))
		{
			net_drop_plans(net);
			return clad_fail(CLAD_ERR_NOMEM, "out of memory planning convolutions");
		}
		if ((st = clad_tapconv_build_packed(op->tap, &g, panels + at, sizeof(float) * (panel_floats - at),
											&bytes)) != CLAD_OK)
		{
			free(op->tap);
			op->tap = NULL;
			net_drop_plans(net);
			return st;
		}
		at += bytes / sizeof(float);
	}
	if (at != panel_floats)
	{
		net_drop_plans(net);
		return clad_fail(CLAD_ERR_FORMAT, "packed weights: %zu floats given, the net's plans need %zu",
						 panel_floats, at);
	}
	if (param_floats != clad_net_kept_param_floats(net))
	{
		size_t		kept = clad_net_kept_param_floats(net);

		net_drop_plans(net);
		return clad_fail(CLAD_ERR_FORMAT, "weights: %zu floats given, the net keeps %zu", param_floats, kept);
	}
	{
		size_t		biggest = 1;

		for (int i = 0; i < net->ntens; i++)
			if (replaced_by_plan(net, i) && net->tens[i].numel > biggest)
				biggest = net->tens[i].numel;
		if (!(zeros = zero_floats(biggest)) || (st = plan_scratch(net, max_B)) != CLAD_OK)
		{
			net_drop_plans(net);
			return zeros ? st : clad_fail(CLAD_ERR_NOMEM, "out of memory mapping zeros");
		}
	}
	clad_big_free(net->params, sizeof(float) * (net->nparams ? net->nparams : 1));
	free(net->buffers);
	free(net->grads);
	/*
	 * Read only from here on: every path that writes them checks released or
	 * mapped.  params holds the kept weights, tensor after tensor; those a
	 * plan replaces read as zeros.
	 */
	net->params = (float *) params;
	net->buffers = (float *) buffers;
	net->grads = NULL;
	at = 0;
	for (int i = 0; i < net->ntens; i++)
	{
		clad_tensor_info *t = &net->tens[i];

		t->grad = NULL;
		if (t->is_buffer)
			t->data = net->buffers + net->tens_off[i];
		else if (replaced_by_plan(net, i))
			t->data = (float *) zeros;
		else
		{
			t->data = net->params + at;
			at += t->numel;
		}
	}
	net->mapped = 1;
	net->weightless = 0;
	net->released = 1;
	net->tap_max_B = max_B;
	return CLAD_OK;
}

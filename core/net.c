/* core/net.c: a network of layer calls (net.h): building, parameters, saving
 * and loading; each pass and step dispatched to the host (net_host.c) or the
 * device (net_device.c). */
#include "net_internal.h"
#include "bigalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Nets finished by this thread while set get no weight memory (see net.h). */
static _Thread_local int defer_weights = 0;

void
clad_net_defer_weights(int on)
{
	defer_weights = on;
}

/* ---------------------------------------------------------------- building */

/* Keep the first build error (sticky, see net.h); returns -1. */
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
clad_net_free(clad_net *net)
{
	if (!net)
		return;
	net_device_release(net);
	net_host_free_runtime(net);
	net_free_plans(net);
	for (int i = 0; i < net->nops; i++)
	{
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

/* Whether v can be a new layer's input (else the build error is kept). */
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

/* A new value of shape (C,H,W), sharing alias's memory when alias >= 0; its id or -1. */
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

/* A new op of kind reading value in; NULL when out of memory. */
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

/* An op whose output has its input's shape (activations, dropout with p). */
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

int
clad_net_value_channels(const clad_net *net, int v)
{
	return v >= 0 && v < net->nvals ? net->vals[v].C : 0;
}

int
clad_net_mark_feature(clad_net *net, int v)
{
	if (v < 0 || v >= net->nvals)
		return build_error(net, CLAD_ERR_INVALID, "feature tap of a bad value");
	if (net->nfeatures >= CLAD_NET_MAX_FEATURES)
		return build_error(net, CLAD_ERR_INVALID, "too many feature taps");
	net->features[net->nfeatures++] = v;
	return v;
}

int
clad_net_num_features(const clad_net *net)
{
	return net->nfeatures;
}

int
clad_net_feature_shape(const clad_net *net, int i, int *C, int *H, int *W)
{
	const value_info *v;

	if (i < 0 || i >= net->nfeatures)
		return 0;
	v = &net->vals[net->features[i]];
	*C = v->C;
	*H = v->H;
	*W = v->W;
	return 1;
}

const float *
clad_net_feature(const clad_net *net, int i)
{
	if (i < 0 || i >= net->nfeatures || net->dev || !net->have_forward || !net->act)
		return NULL;
	return net->act[net->features[i]];
}

clad_status
clad_net_finish(clad_net *net)
{
	clad_status st;

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
	/* BatchNorm starts with gamma and the running variance at 1 */
	for (int i = 0; i < net->nops && !net->weightless; i++)
		if (net->ops[i].kind == OP_BN)
		{
			clad_tensor_info *rv = &net->tens[net->ops[i].rv];
			clad_tensor_info *gamma = &net->tens[net->ops[i].w];

			for (size_t j = 0; j < rv->numel; j++)
				rv->data[j] = 1.0f;
			for (size_t j = 0; j < gamma->numel; j++)
				gamma->data[j] = 1.0f;
		}
	if ((st = net_build_training_plans(net)) != CLAD_OK)
		return st;
	if (!net_host_grow_scratch(net, net_host_scratch_floats(net, 1)))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory allocating convolution scratch");
	net->finished = 1;
	return CLAD_OK;
}

/* ---------------------------------------------------------------- running */

clad_status
clad_net_forward(clad_net *net, const float *x, int B, clad_mode mode)
{
	if (!net->finished)
		return clad_fail(CLAD_ERR_INVALID, "net not finished");
	if (B <= 0)
		return clad_fail(CLAD_ERR_INVALID, "batch size must be positive");
	if (net->dev)
		return net_device_forward(net, x, B, mode);
	return net_host_forward(net, x, B, mode);
}

const float *
clad_net_output(const clad_net *net)
{
	if (net->dev)
		return net_device_output((clad_net *) net);	/* the lazy copy is a cache */
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
		return net_device_forward_after(net, before, mode);
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
		return net_device_backward_through(after, before, dout, param_grads);
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

clad_status
clad_net_backward(clad_net *net, const float *dout, int param_grads, float *dx)
{
	if (!net->have_forward)
		return clad_fail(CLAD_ERR_INVALID, "backward without a forward pass");
	if (!dout && !net->have_loss)
		return clad_fail(CLAD_ERR_INVALID, "backward from the loss without a loss since the forward pass");
	if (net->dev)
		return net_device_backward(net, dout, param_grads, dx);
	return net_host_backward(net, dout, param_grads, dx);
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

/* The optimiser's first moment (and with both, its second), zeroed on first use. */
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
	net_drop_inference_plans(net);
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
	net_drop_inference_plans(net);
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

/* clad_net_load and clad_net_load_in_place. */
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
	net_drop_inference_plans(net);
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

/* ---------------------------------------------------------------- moving to a device */

clad_status
clad_net_to_device(clad_net *net, clad_device *dev)
{
	clad_status st;

	if (!net->finished)
		return clad_fail(CLAD_ERR_INVALID, "net not finished");
	if (net->dev == dev)
		return CLAD_OK;
	if (dev && (net->released || net->mapped || net->weightless))
		return clad_fail(CLAD_ERR_INVALID, "a net whose weights were released or mapped for CPU scoring "
						 "cannot move to a device");
	if (net->dev)
	{
		if ((st = net_device_bring_back(net)) != CLAD_OK)
			return st;
		net_device_release(net);
	}
	if (!dev)
		return CLAD_OK;
	/* plans and host activations would be stale or unused while away */
	net_drop_inference_plans(net);
	net_host_free_runtime(net);
	return net_device_send_up(net, dev);
}

clad_device *
clad_net_device(const clad_net *net)
{
	return net->dev;
}

clad_status
clad_net_sync_host(clad_net *net)
{
	return net->dev ? net_device_sync_host(net) : CLAD_OK;
}

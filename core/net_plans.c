/* core/net_plans.c: a net's small-map convolution plans (tapconv.h).
 *
 * A training plan (no weights) serves the passes that read the weights as
 * they are; it is built when the net is finished.  An inference plan holds
 * its own packed copy of the weights and serves eval passes up to a batch
 * size; clad_net_prepare_inference builds it, clad_net_use_mapped builds it
 * over panels mapped from a prepared file, and the weights it replaces can
 * be handed back to the system (clad_net_release_planned_weights). */
#include "net_internal.h"
#include "bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Convolutions whose output maps are at most this many pixels get plans. */
#define PLAN_MAX_POSITIONS 64

/* ---------------------------------------------------------------- training plans */

/* Training plans for the convolutions on small maps with enough channels for a GEMM per tap. */
clad_status
net_build_training_plans(clad_net *net)
{
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		clad_conv_geom g;
		clad_status st;

		if (op->kind != OP_CONV)
			continue;
		net_host_conv_geom(net, op, 1, &g);
		if (g.OH * g.OW > PLAN_MAX_POSITIONS || g.C < 16 || g.KH * g.KW <= 1 ||
			g.KH * g.KW > CLAD_TAPCONV_TRAINING_MAX_TAPS)
			continue;
		if (!(op->training_plan = malloc(sizeof(clad_tapconv))))
			return clad_fail(CLAD_ERR_NOMEM, "out of memory planning convolutions");
		if ((st = clad_tapconv_build(op->training_plan, &g, NULL)) != CLAD_OK)
		{
			free(op->training_plan);
			op->training_plan = NULL;
			return st;
		}
	}
	return CLAD_OK;
}

/* ---------------------------------------------------------------- inference plans */

void
net_drop_inference_plans(clad_net *net)
{
	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].inference_plan)
		{
			clad_tapconv_free(net->ops[i].inference_plan);
			free(net->ops[i].inference_plan);
			net->ops[i].inference_plan = NULL;
		}
	net->inference_max_B = 0;
}

void
net_free_plans(clad_net *net)
{
	net_drop_inference_plans(net);
	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].training_plan)
		{
			clad_tapconv_free(net->ops[i].training_plan);
			free(net->ops[i].training_plan);
			net->ops[i].training_plan = NULL;
		}
}

/* Whether conv op gets an inference plan; its geometry in g. */
static int
inference_plan_geom(const clad_net *net, const net_op *op, clad_conv_geom *g)
{
	if (op->kind != OP_CONV)
		return 0;
	net_host_conv_geom(net, op, 1, g);
	return g->OH * g->OW <= PLAN_MAX_POSITIONS && clad_tapconv_supported(g);
}

/* Grow the shared scratch to what the inference plans need for batches up to max_B. */
static clad_status
inference_plan_scratch(clad_net *net, int max_B)
{
	size_t		need = 0;

	for (int i = 0; i < net->nops; i++)
	{
		const clad_tapconv *plan = net->ops[i].inference_plan;

		if (plan && clad_tapconv_inference_scratch_floats(plan, max_B) > need)
			need = clad_tapconv_inference_scratch_floats(plan, max_B);
	}
	if (!net_host_grow_scratch(net, need))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for convolution scratch");
	return CLAD_OK;
}

clad_status
clad_net_prepare_inference(clad_net *net, int max_B)
{
	return clad_net_prepare_inference_in(net, max_B, CLAD_PRECISION_FP32);
}

clad_precision
clad_net_precision(const clad_net *net)
{
	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].inference_plan)
			return net->ops[i].inference_plan->precision;
	return CLAD_PRECISION_FP32;
}

clad_status
clad_net_prepare_inference_in(clad_net *net, int max_B, clad_precision p)
{
	clad_status st;

	if (!net->finished || max_B < 1)
		return clad_fail(CLAD_ERR_INVALID, "prepare_inference needs a finished net and max_B >= 1");
	if (net->dev)
		return net_device_refuse(net, "prepared for CPU inference");
	if (net->released)
		return clad_fail(CLAD_ERR_INVALID, "weights were released: load them again before preparing");
	net_drop_inference_plans(net);
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		clad_conv_geom g;

		if (!inference_plan_geom(net, op, &g))
			continue;
		if (!(op->inference_plan = malloc(sizeof(clad_tapconv))))
		{
			net_drop_inference_plans(net);
			return clad_fail(CLAD_ERR_NOMEM, "out of memory planning convolutions");
		}
		if ((st = clad_tapconv_build_inference(op->inference_plan, &g, net->tens[op->w].data, p)) != CLAD_OK)
		{
			free(op->inference_plan);
			op->inference_plan = NULL;
			net_drop_inference_plans(net);
			return st;
		}
	}
	if ((st = inference_plan_scratch(net, max_B)) != CLAD_OK)
	{
		net_drop_inference_plans(net);
		return st;
	}
	net->inference_max_B = max_B;
	return CLAD_OK;
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

		if (!op->inference_plan || op->released || op->w < 0 || net->mapped)
			continue;
		/* the whole pages inside the weight tensor; its edges stay */
		start = ((uintptr_t) net->tens[op->w].data + page - 1) & ~(uintptr_t) (page - 1);
		end = ((uintptr_t) (net->tens[op->w].data + net->tens[op->w].numel)) & ~(uintptr_t) (page - 1);
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

int
clad_net_inference_batch(const clad_net *net)
{
	return net->inference_max_B;
}

/* ---------------------------------------------------------------- prepared files */

size_t
clad_net_panel_floats(const clad_net *net)
{
	size_t		n = 0;

	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].inference_plan)
			n += net->ops[i].inference_plan->panels_bytes / sizeof(float);
	return n;
}

const float *
clad_net_panel_block(const clad_net *net, int *at, size_t *floats)
{
	for (; *at < net->nops; (*at)++)
		if (net->ops[*at].inference_plan)
		{
			const clad_tapconv *tc = net->ops[(*at)++].inference_plan;

			*floats = tc->panels_bytes / sizeof(float);
			return (const float *) tc->panels;
		}
	*floats = 0;
	return NULL;
}

/* Whether tensor ti is a weight an inference plan replaces (the passes it serves never read it). */
static int
replaced_by_inference_plan(const clad_net *net, int ti)
{
	for (int i = 0; i < net->nops; i++)
		if (net->ops[i].inference_plan && net->ops[i].w == ti)
			return 1;
	return 0;
}

size_t
clad_net_kept_param_floats(const clad_net *net)
{
	size_t		n = 0;

	for (int i = 0; i < net->ntens; i++)
		if (!net->tens[i].is_buffer && !replaced_by_inference_plan(net, i))
			n += net->tens[i].numel;
	return n;
}

const float *
clad_net_kept_param_block(const clad_net *net, int *at, size_t *floats)
{
	for (; *at < net->ntens; (*at)++)
		if (!net->tens[*at].is_buffer && !replaced_by_inference_plan(net, *at))
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
clad_net_use_mapped(clad_net *net, int max_B, clad_precision precision, const float *params, size_t param_floats,
					const float *buffers, const float *panels, size_t panel_floats)
{
	size_t		at = 0;
	const float *zeros;
	clad_status st;

	if (!net->finished || max_B < 1 || (net->released && !net->weightless) || net->mapped ||
		net->inference_max_B)
		return clad_fail(CLAD_ERR_INVALID, "use_mapped needs a finished, unprepared net and max_B >= 1");
	if (net->dev)
		return net_device_refuse(net, "given mapped weights");
	/* the plans first: nothing of the net changes until they all fit */
	for (int i = 0; i < net->nops; i++)
	{
		net_op	   *op = &net->ops[i];
		clad_conv_geom g;
		size_t		bytes;

		if (!inference_plan_geom(net, op, &g))
			continue;
		if (!(op->inference_plan = malloc(sizeof(clad_tapconv))))
		{
			net_drop_inference_plans(net);
			return clad_fail(CLAD_ERR_NOMEM, "out of memory planning convolutions");
		}
		if ((st = clad_tapconv_build_packed(op->inference_plan, &g, panels + at,
											sizeof(float) * (panel_floats - at), precision, &bytes)) != CLAD_OK)
		{
			free(op->inference_plan);
			op->inference_plan = NULL;
			net_drop_inference_plans(net);
			return st;
		}
		at += bytes / sizeof(float);
	}
	if (at != panel_floats)
	{
		net_drop_inference_plans(net);
		return clad_fail(CLAD_ERR_FORMAT, "packed weights: %zu floats given, the net's plans need %zu",
						 panel_floats, at);
	}
	if (param_floats != clad_net_kept_param_floats(net))
	{
		size_t		kept = clad_net_kept_param_floats(net);

		net_drop_inference_plans(net);
		return clad_fail(CLAD_ERR_FORMAT, "weights: %zu floats given, the net keeps %zu", param_floats, kept);
	}
	{
		size_t		biggest = 1;

		for (int i = 0; i < net->ntens; i++)
			if (replaced_by_inference_plan(net, i) && net->tens[i].numel > biggest)
				biggest = net->tens[i].numel;
		if (!(zeros = zero_floats(biggest)) || (st = inference_plan_scratch(net, max_B)) != CLAD_OK)
		{
			net_drop_inference_plans(net);
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
		else if (replaced_by_inference_plan(net, i))
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
	net->inference_max_B = max_B;
	return CLAD_OK;
}

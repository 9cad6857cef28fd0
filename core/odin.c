/* core/odin.c: input gradient of the cross-entropy and ODIN's perturbed confidence. */
#include "odin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
clad_odin_work_free(clad_odin_work *w)
{
	free(w->dx);
	free(w->xp);
	free(w->dlogits);
	free(w->labels);
	memset(w, 0, sizeof(*w));
}

static clad_status
ensure_work(clad_odin_work *w, int B, size_t in_numel, size_t K)
{
	if (B <= w->cap_B && w->dx)
		return CLAD_OK;
	clad_odin_work_free(w);
	w->dx = malloc(sizeof(float) * B * in_numel);
	w->xp = malloc(sizeof(float) * B * in_numel);
	w->dlogits = malloc(sizeof(float) * B * K);
	w->labels = malloc(sizeof(int32_t) * B);
	if (!w->dx || !w->xp || !w->dlogits || !w->labels)
	{
		clad_odin_work_free(w);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for ODIN buffers of batch %d", B);
	}
	w->cap_B = B;
	return CLAD_OK;
}

static void
argmax_rows(int32_t *labels, const float *logits, int B, int K)
{
	for (int b = 0; b < B; b++)
		labels[b] = clad_argmax(logits + (size_t) b * K, K);
}

clad_status
clad_input_gradient(clad_net *clf, const float *x, int B, const int32_t *labels,
					float T, float *logits, float *dx, clad_odin_work *w)
{
	int			C, H, W;
	size_t		K = clad_net_out_numel(clf);
	clad_status st;
	float		loss;

	clad_net_in_shape(clf, &C, &H, &W);
	if (!(T > 0.0f))
		return clad_fail(CLAD_ERR_INVALID, "temperature must be positive");
	if ((st = ensure_work(w, B, (size_t) C * H * W, K)) != CLAD_OK)
		return st;
	if ((st = clad_net_forward(clf, x, B, CLAD_EVAL)) != CLAD_OK)
		return st;
	if (logits)
		memcpy(logits, clad_net_output(clf), sizeof(float) * B * K);
	if (!labels)
	{
		argmax_rows(w->labels, clad_net_output(clf), B, (int) K);
		labels = w->labels;
	}
	memset(w->dlogits, 0, sizeof(float) * B * K);
	/* the mean over the batch scales every row by 1/B; undo it so each
	 * image's gradient is that of its own loss */
	loss = clad_cross_entropy_loss(w->dlogits, clad_net_output(clf), labels, B, (int) K, T);
	if (isnan(loss))
		return clad_fail(CLAD_ERR_INVALID, "label out of range");
	for (size_t i = 0; i < (size_t) B * K; i++)
		w->dlogits[i] *= (float) B;
	return clad_net_backward(clf, w->dlogits, 0, dx);
}

clad_status
clad_odin_confidence(clad_net *clf, const float *x, int B, float T, float eps,
					 float *conf, int32_t *pred, float *logits, clad_odin_work *w)
{
	int			C, H, W;
	size_t		K = clad_net_out_numel(clf), n;
	const float *xin = x;
	clad_status st;

	clad_net_in_shape(clf, &C, &H, &W);
	n = (size_t) B * C * H * W;
	if (!(T > 0.0f) || !(eps >= 0.0f))
		return clad_fail(CLAD_ERR_INVALID, "ODIN needs T > 0 and eps >= 0");
	if (eps > 0.0f)
	{
		/* size the buffers first: w->dx must not move during the call */
		if ((st = ensure_work(w, B, (size_t) C * H * W, K)) != CLAD_OK ||
			(st = clad_input_gradient(clf, x, B, NULL, T, logits, w->dx, w)) != CLAD_OK)
			return st;
		if (pred)
			memcpy(pred, w->labels, sizeof(int32_t) * B);
		for (size_t i = 0; i < n; i++)
		{
			float		g = w->dx[i];

			w->xp[i] = x[i] - (g > 0.0f ? eps : (g < 0.0f ? -eps : 0.0f));
		}
		xin = w->xp;
	}
	if ((st = clad_net_forward(clf, xin, B, CLAD_EVAL)) != CLAD_OK)
		return st;
	if (eps == 0.0f)
	{
		if (logits)
			memcpy(logits, clad_net_output(clf), sizeof(float) * B * K);
		if (pred)
			argmax_rows(pred, clad_net_output(clf), B, (int) K);
	}
	if (conf)
	{
		const float *l = clad_net_output(clf);

		for (int b = 0; b < B; b++)
		{
			/* max softmax = 1 / sum_k exp((l_k - l_max) / T) */
			const float *r = l + (size_t) b * K;
			float		m = r[0];
			double		s = 0.0;

			for (size_t k = 1; k < K; k++)
				if (r[k] > m)
					m = r[k];
			for (size_t k = 0; k < K; k++)
				s += exp(((double) r[k] - m) / T);
			conf[b] = (float) (1.0 / s);
		}
	}
	return CLAD_OK;
}

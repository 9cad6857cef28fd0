/* trainer/report.c: the HTML training report (see report.h). */
#include "report.h"
#include "rng.h"

#include <png.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAP_POINTS 1000			/* t-SNE points at most */
#define PER_CLUSTER 10			/* sample images per cluster */
#define TOP_ANOMALIES 24
#define HIST_BINS 40

/* 20 distinct colours (Tableau 20), by pseudo-label or class. */
static const char *const palette[20] = {
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
	"#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
	"#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"
};

/* ------------------------------------------------------------------ t-SNE */

/*
 * Exact t-SNE of x (n, d) into y (n, 2): Gaussian affinities at the given
 * perplexity (binary search on each point's precision), symmetrised; Student-t
 * affinities in 2-D; gradient descent with momentum and early exaggeration
 * (the settings of van der Maaten's reference implementation).
 */
static clad_status
tsne(const float *x, int n, int d, double perplexity, int iters, uint64_t seed, double *y)
{
	double	   *D = malloc(sizeof(double) * n * n);
	double	   *P = malloc(sizeof(double) * n * n);
	double	   *Q = malloc(sizeof(double) * n * n);
	double	   *dy = malloc(sizeof(double) * n * 2), *gains = malloc(sizeof(double) * n * 2);
	double	   *upd = calloc((size_t) n * 2, sizeof(double));
	double		target = log(perplexity);
	clad_rng	r;

	if (!D || !P || !Q || !dy || !gains || !upd)
	{
		free(D), free(P), free(Q), free(dy), free(gains), free(upd);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory for the t-SNE of %d points", n);
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
		{
			double		s = 0;

			for (int k = 0; k < d; k++)
			{
				double		t = (double) x[(size_t) i * d + k] - x[(size_t) j * d + k];

				s += t * t;
			}
			D[(size_t) i * n + j] = s;
		}
	for (int i = 0; i < n; i++)
	{
		double		beta = 1.0, lo = 0, hi = INFINITY, sum = 0;
		double	   *row = P + (size_t) i * n;

		for (int it = 0; it < 100; it++)
		{
			double		h = 0;

			sum = 0;
			for (int j = 0; j < n; j++)
			{
				row[j] = j == i ? 0 : exp(-D[(size_t) i * n + j] * beta);
				sum += row[j];
			}
			if (sum <= 0)
				sum = 1e-300;
			for (int j = 0; j < n; j++)
				h += beta * D[(size_t) i * n + j] * row[j];
			h = log(sum) + h / sum;	/* entropy of the row */
			if (fabs(h - target) < 1e-5)
				break;
			if (h > target)
			{
				lo = beta;
				beta = isinf(hi) ? beta * 2 : (beta + hi) / 2;
			}
			else
			{
				hi = beta;
				beta = (beta + lo) / 2;
			}
		}
		for (int j = 0; j < n; j++)
			row[j] /= sum;
	}
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
		{
			double		p = (P[(size_t) i * n + j] + P[(size_t) j * n + i]) / (2.0 * n);

			P[(size_t) i * n + j] = P[(size_t) j * n + i] = p > 1e-12 ? p : 1e-12;
		}
	clad_rng_seed(&r, seed);
	for (int i = 0; i < n * 2; i++)
	{
		y[i] = 1e-4 * clad_rng_normal(&r);
		gains[i] = 1.0;
	}
	for (int it = 0; it < iters; it++)
	{
		double		exag = it < 100 ? 12.0 : 1.0, mom = it < 250 ? 0.5 : 0.8, qsum = 0;

		for (int i = 0; i < n; i++)
			for (int j = 0; j < n; j++)
			{
				double		a = y[2 * i] - y[2 * j], b = y[2 * i + 1] - y[2 * j + 1];
				double		q = i == j ? 0 : 1.0 / (1.0 + a * a + b * b);

				Q[(size_t) i * n + j] = q;
				qsum += q;
			}
		for (int i = 0; i < n; i++)
		{
			double		g0 = 0, g1 = 0;

			for (int j = 0; j < n; j++)
			{
				double		q = Q[(size_t) i * n + j];
				double		m = (exag * P[(size_t) i * n + j] - q / qsum) * q;

				g0 += m * (y[2 * i] - y[2 * j]);
				g1 += m * (y[2 * i + 1] - y[2 * j + 1]);
			}
			dy[2 * i] = 4 * g0;
			dy[2 * i + 1] = 4 * g1;
		}
		for (int i = 0; i < n * 2; i++)
		{
			gains[i] = (dy[i] > 0) != (upd[i] > 0) ? gains[i] + 0.2 : gains[i] * 0.8;
			if (gains[i] < 0.01)
				gains[i] = 0.01;
			upd[i] = mom * upd[i] - 200.0 * gains[i] * dy[i];
			y[i] += upd[i];
		}
	}
	free(D), free(P), free(Q), free(dy), free(gains), free(upd);
	return CLAD_OK;
}

/* ------------------------------------------------------------------ output */

typedef struct page
{
	FILE	   *f;
	int			ok;
} page;

static void
out(page *p, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
out(page *p, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	if (vfprintf(p->f, fmt, ap) < 0)
		p->ok = 0;
	va_end(ap);
}

/* Text for XHTML: & < > " escaped. */
static void
text(page *p, const char *s)
{
	for (; s && *s; s++)
		switch (*s)
		{
			case '&':
				out(p, "&amp;");
				break;
			case '<':
				out(p, "&lt;");
				break;
			case '>':
				out(p, "&gt;");
				break;
			case '"':
				out(p, "&quot;");
				break;
			default:
				if (fputc(*s, p->f) == EOF)
					p->ok = 0;
		}
}

/* One image (C,H,W floats in [0,1]) as an <img> with a base64 PNG data URI. */
static void
image(page *p, const float *px, int C, int H, int W, const char *caption)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	png_image img;
	uint8_t    *raw = malloc((size_t) H * W * (C == 1 ? 1 : 3));
	uint8_t    *png = NULL;
	png_alloc_size_t len = 0;

	if (!raw)
	{
		p->ok = 0;
		return;
	}
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int c = 0; c < (C == 1 ? 1 : 3); c++)
			{
				float		v = px[((size_t) (c < C ? c : 0) * H + y) * W + x];

				raw[((size_t) y * W + x) * (C == 1 ? 1 : 3) + c] = (uint8_t) lrintf(255.0f * (v < 0 ? 0 : v > 1 ? 1 : v));
			}
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	img.width = (png_uint_32) W;
	img.height = (png_uint_32) H;
	img.format = C == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
	if (png_image_write_to_memory(&img, NULL, &len, 0, raw, 0, NULL) && (png = malloc(len)) &&
		png_image_write_to_memory(&img, png, &len, 0, raw, 0, NULL))
	{
		out(p, "<figure><img width=\"%d\" height=\"%d\" alt=\"\" src=\"data:image/png;base64,", W * 2, H * 2);
		for (png_alloc_size_t i = 0; i < len; i += 3)
		{
			uint32_t	v = (uint32_t) png[i] << 16 | (i + 1 < len ? (uint32_t) png[i + 1] << 8 : 0) |
				(i + 2 < len ? png[i + 2] : 0);

			out(p, "%c%c%c%c", b64[v >> 18], b64[(v >> 12) & 63], i + 1 < len ? b64[(v >> 6) & 63] : '=',
				i + 2 < len ? b64[v & 63] : '=');
		}
		out(p, "\"/>");
		if (caption)
		{
			out(p, "<figcaption>");
			text(p, caption);
			out(p, "</figcaption>");
		}
		out(p, "</figure>\n");
	}
	else
		p->ok = 0;
	png_image_free(&img);
	free(png);
	free(raw);
}

/* An SVG chart of w x h pixels plotting [x0,x1] x [y0,y1], with axes and labels. */
typedef struct chart
{
	double		x0, x1, y0, y1;
	int			w, h;
} chart;

static double
cx(const chart *c, double x)
{
	return 40 + (x - c->x0) / (c->x1 - c->x0 > 0 ? c->x1 - c->x0 : 1) * (c->w - 50);
}

static double
cy(const chart *c, double y)
{
	return c->h - 30 - (y - c->y0) / (c->y1 - c->y0 > 0 ? c->y1 - c->y0 : 1) * (c->h - 40);
}

static void
chart_begin(page *p, const chart *c, const char *id, const char *xlabel, const char *ylabel)
{
	out(p, "<svg class=\"chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\">\n", id, c->w, c->h, c->w, c->h);
	out(p, "<rect x=\"40\" y=\"10\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#999\"/>\n",
		c->w - 50, c->h - 40);
	out(p, "<text x=\"40\" y=\"%d\" font-size=\"10\">%.3g</text>", c->h - 18, c->x0);
	out(p, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%.3g</text>", c->w - 10, c->h - 18, c->x1);
	out(p, "<text x=\"36\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%.3g</text>", c->h - 30, c->y0);
	out(p, "<text x=\"36\" y=\"18\" font-size=\"10\" text-anchor=\"end\">%.3g</text>", c->y1);
	out(p, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">", c->w / 2 + 15, c->h - 4);
	text(p, xlabel);
	out(p, "</text><text x=\"10\" y=\"%d\" font-size=\"11\" transform=\"rotate(-90 10 %d)\" "
		"text-anchor=\"middle\">", c->h / 2, c->h / 2);
	text(p, ylabel);
	out(p, "</text>\n");
}

/* A polyline of n points (x[i], y[i]) with a data-n attribute the test reads. */
static void
polyline(page *p, const chart *c, const double *x, const double *y, int n, const char *colour, const char *name)
{
	out(p, "<polyline class=\"series\" data-name=\"%s\" data-n=\"%d\" fill=\"none\" stroke=\"%s\" "
		"stroke-width=\"1.5\" points=\"", name, n, colour);
	for (int i = 0; i < n; i++)
		out(p, "%s%.1f,%.1f", i ? " " : "", cx(c, x[i]), cy(c, y[i]));
	out(p, "\"/>\n");
}

/* ------------------------------------------------------------------ sections */

static void
loss_chart(page *p, const char *id, const char *title, const clad_stage_log *l)
{
	chart		c = {1, l->epochs_run > 1 ? l->epochs_run : 2, INFINITY, -INFINITY, 300, 180};
	double	   *x = malloc(sizeof(double) * (l->epochs_run ? l->epochs_run : 1));

	out(p, "<div class=\"cell\"><h3>");
	text(p, title);
	out(p, "</h3>\n");
	if (!x || l->epochs_run == 0)
	{
		out(p, "<p>not run (0 epochs)</p></div>\n");
		free(x);
		return;
	}
	for (int e = 0; e < l->epochs_run; e++)
	{
		x[e] = e + 1;
		if (l->loss[e] < c.y0)
			c.y0 = l->loss[e];
		if (l->loss[e] > c.y1)
			c.y1 = l->loss[e];
	}
	if (c.y1 <= c.y0)
		c.y1 = c.y0 + 1;
	chart_begin(p, &c, id, "epoch", "mean loss");
	polyline(p, &c, x, l->loss, l->epochs_run, palette[0], "loss");
	/* a mark per epoch: a run of one epoch is a point, not a line */
	for (int e = 0; e < l->epochs_run; e++)
		out(p, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\"/>", cx(&c, x[e]), cy(&c, l->loss[e]), palette[0]);
	out(p, "</svg></div>\n");
	free(x);
}

static void
scatter(page *p, const char *id, const double *y, const int *colour_of, int n, const char *title)
{
	chart		c = {INFINITY, -INFINITY, INFINITY, -INFINITY, 460, 400};

	for (int i = 0; i < n; i++)
	{
		c.x0 = fmin(c.x0, y[2 * i]);
		c.x1 = fmax(c.x1, y[2 * i]);
		c.y0 = fmin(c.y0, y[2 * i + 1]);
		c.y1 = fmax(c.y1, y[2 * i + 1]);
	}
	out(p, "<div class=\"cell\"><h3>");
	text(p, title);
	out(p, "</h3>\n");
	chart_begin(p, &c, id, "t-SNE 1", "t-SNE 2");
	out(p, "<g class=\"series\" data-n=\"%d\">\n", n);
	for (int i = 0; i < n; i++)
		out(p, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"/>\n", cx(&c, y[2 * i]),
			cy(&c, y[2 * i + 1]), colour_of[i] >= 0 ? palette[colour_of[i] % 20] : "#000");
	out(p, "</g></svg></div>\n");
}

typedef struct scored
{
	float		score;
	uint8_t		anomaly;
} scored;

static int
by_score_desc(const void *a, const void *b)
{
	float		x = ((const scored *) a)->score, y = ((const scored *) b)->score;

	return (x < y) - (x > y);
}

/* ROC of scores where higher = more anomalous: (FPR, TPR) at each distinct threshold. */
static int
roc(const float *score, const uint8_t *anomaly, int n, double *fpr, double *tpr)
{
	scored	   *v = malloc(sizeof(scored) * n);
	int			npos = 0, nneg, tp = 0, fp = 0, m = 0;

	if (!v)
		return 0;
	for (int i = 0; i < n; i++)
	{
		v[i] = (scored) {score[i], anomaly[i]};
		npos += anomaly[i];
	}
	nneg = n - npos;
	qsort(v, n, sizeof(scored), by_score_desc);
	fpr[m] = 0;
	tpr[m++] = 0;
	for (int i = 0; i < n; i++)
	{
		if (v[i].anomaly)
			tp++;
		else
			fp++;
		if (i + 1 == n || v[i + 1].score != v[i].score)
		{
			fpr[m] = nneg ? (double) fp / nneg : 0;
			tpr[m++] = npos ? (double) tp / npos : 0;
		}
	}
	free(v);
	return m;
}

clad_status
clad_report_write(const char *dir, const clad_report_input *in)
{
	clad_model *m = in->m;
	const clad_dataset *nd = in->normal;
	size_t		img = (size_t) nd->C * nd->H * nd->W;
	int			clad = m->method == CLAD_METHOD_CLAD;
	/* the latent map needs codes: CLAD's and Deep SVDD's, not the one-class SVM's or an ensemble's */
	int			n = m->latent < 1 ? 0 : nd->n < MAP_POINTS ? nd->n : MAP_POINTS;
	int32_t    *pick = malloc(sizeof(int32_t) * (nd->n ? nd->n : 1));
	float	   *z = malloc(sizeof(float) * (size_t) (n ? n : 1) * (m->latent > 0 ? m->latent : 1));
	int32_t    *cl = malloc(sizeof(int32_t) * (n ? n : 1));
	int		   *col = calloc(n ? n : 1, sizeof(int));
	double	   *y = malloc(sizeof(double) * (n ? n : 1) * 2);
	char		path[4096];
	page		p = {NULL, 1};
	clad_rng	r;
	clad_status st = CLAD_OK;

	if (!pick || !z || !cl || !col || !y)
	{
		st = clad_fail(CLAD_ERR_NOMEM, "out of memory for the report");
		goto done;
	}
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
	{
		st = clad_fail(CLAD_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
		goto done;
	}
	/* a seeded sample of the normal training images, their codes and pseudo-labels */
	for (int i = 0; i < nd->n; i++)
		pick[i] = i;
	clad_rng_seed(&r, in->cfg ? in->cfg->seed + 99 : 99);
	clad_rng_shuffle(&r, pick, nd->n);
	{
		float	   *x = malloc(sizeof(float) * img * 64);

		if (!x)
		{
			st = clad_fail(CLAD_ERR_NOMEM, "out of memory for the report");
			goto done;
		}
		for (int s = 0; s < n && st == CLAD_OK; s += 64)
		{
			int			B = n - s < 64 ? n - s : 64;

			for (int b = 0; b < B; b++)
				memcpy(x + img * b, nd->pixels + img * pick[s + b], sizeof(float) * img);
			st = clad_model_embed(m, x, B, z + (size_t) s * m->latent, NULL, clad ? cl + s : NULL);
		}
		free(x);
		if (st != CLAD_OK)
			goto done;
	}
	if (n > 0 && (st = tsne(z, n, m->latent, n > 90 ? 30.0 : n / 3.0, 750, in->cfg ? in->cfg->seed : 1, y)) != CLAD_OK)
		goto done;

	snprintf(path, sizeof(path), "%s/index.html", dir);
	if (!(p.f = fopen(path, "w")))
	{
		st = clad_fail(CLAD_ERR_IO, "cannot write %s: %s", path, strerror(errno));
		goto done;
	}
	out(&p, "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
		"<meta charset=\"utf-8\"/>\n<title>clad training report</title>\n<style>\n"
		"body{font-family:sans-serif;margin:1.5em;color:#222}h2{border-bottom:1px solid #ccc}"
		".row{display:flex;flex-wrap:wrap;gap:1em}.cell{display:inline-block}"
		"figure{display:inline-block;margin:2px;text-align:center;font-size:10px}"
		"figure img{image-rendering:pixelated;border:1px solid #ddd}td,th{padding:2px 8px;text-align:right}"
		"\n</style>\n</head>\n<body>\n<h1>clad training report</h1>\n<p>");
	text(&p, in->title);
	out(&p, "</p>\n");

	out(&p, "<h2>Training</h2>\n<div class=\"row\">\n");
	if (m->method == CLAD_METHOD_DEEPSVDD)
	{
		loss_chart(&p, "loss-autoencoder", "autoencoder pretraining (MSE)", &in->log->ae);
		loss_chart(&p, "loss-deepsvdd", "Deep SVDD (mean ||z - c||^2)", &in->log->clf);
	}
	else if (m->method == CLAD_METHOD_OCSVM)
		out(&p, "<p>A one-class SVM is fitted in one solve (libsvm): no epochs, no losses to show.</p>\n");
	else
	{
		/* CLAD's stages; an ensemble's CLAD member's */
		loss_chart(&p, "loss-autoencoder", "autoencoder (MSE)", &in->log->ae);
		loss_chart(&p, "loss-dec", "DEC (KL divergence)", &in->log->dec);
		loss_chart(&p, "loss-classifier", "classifier (cross-entropy)", &in->log->clf);
	}
	out(&p, "</div>\n");

	if (n > 0)
	{
		out(&p, "<h2>Latent codes</h2>\n<p>t-SNE (exact, perplexity %g) of the latent codes of %d normal "
			"training images.</p>\n<div class=\"row\">\n", n > 90 ? 30.0 : n / 3.0, n);
		for (int i = 0; clad && i < n; i++)
			col[i] = cl[i];
		if (clad)
			scatter(&p, "map-cluster", y, col, n, "coloured by pseudo-label (cluster)");
		if (nd->labels)
		{
			for (int i = 0; i < n; i++)
				col[i] = nd->labels[pick[i]];
			scatter(&p, "map-class", y, col, n, "coloured by true class");
		}
		out(&p, "</div>\n");
	}

	if (clad)
		out(&p, "<h2>Clusters</h2>\n<table>\n");
	for (int k = 0; clad && k < m->K; k++)
	{
		int			shown = 0;

		out(&p, "<tr><th style=\"color:%s\">%d</th><td style=\"text-align:left\">", palette[k % 20], k);
		for (int i = 0; i < n && shown < PER_CLUSTER; i++)
			if (cl[i] == k)
			{
				image(&p, nd->pixels + img * pick[i], nd->C, nd->H, nd->W, NULL);
				shown++;
			}
		if (!shown)
			out(&p, "(no image of the sample)");
		out(&p, "</td></tr>\n");
	}
	if (clad)
		out(&p, "</table>\n");

	if (in->test && in->conf)
	{
		const clad_dataset *t = in->test;
		float	   *so = malloc(sizeof(float) * t->n), *sb = malloc(sizeof(float) * t->n);
		double	   *fx = malloc(sizeof(double) * (t->n + 1)), *fy = malloc(sizeof(double) * (t->n + 1));
		int		   *top = malloc(sizeof(int) * t->n);

		if (!so || !sb || !fx || !fy || !top)
		{
			free(so), free(sb), free(fx), free(fy), free(top);
			st = clad_fail(CLAD_ERR_NOMEM, "out of memory for the report");
			goto done;
		}
		out(&p, "<h2>Test split</h2>\n<div class=\"row\">\n");
		{
			chart		c = {0, 1, 0, 1, 360, 320};
			int			k;
			char		score_label[64];
			const char *base_label = m->neighbours ? "baseline (orientation)"
				: m->rotations > 1 ? "baseline (upright only)" : "baseline (T = 1)";

			for (int i = 0; i < t->n; i++)
				so[i] = -in->conf[i];
			out(&p, "<div class=\"cell\"><h3>ROC (anomaly = positive)</h3>\n");
			chart_begin(&p, &c, "roc", "false positive rate", "true positive rate");
			if (!clad)
				snprintf(score_label, sizeof(score_label), "%s", clad_model_method_name(m));
			else if (m->neighbours)
				snprintf(score_label, sizeof(score_label), "neighbours (%d images)", m->nb.n);
			else if (m->rotations > 1)
				snprintf(score_label, sizeof(score_label), "orientation (%d turns)", m->rotations);
			else
				snprintf(score_label, sizeof(score_label), "ODIN (T = %g)", m->T);
			if (in->base)
			{
				for (int i = 0; i < t->n; i++)
					sb[i] = -in->base[i];
				k = roc(sb, in->anomaly, t->n, fx, fy);
				polyline(&p, &c, fx, fy, k, palette[1], base_label);
				out(&p, "<text x=\"200\" y=\"215\" font-size=\"11\" fill=\"%s\">%s</text>\n", palette[1],
					base_label);
			}
			/* an ensemble's members, each alone */
			for (int e = 0; e < m->n_members && st == CLAD_OK; e++)
			{
				for (int s = 0; s < t->n && st == CLAD_OK; s += 64)
					st = clad_model_score(m->members[e], t->pixels + img * s, t->n - s < 64 ? t->n - s : 64,
										  sb + s, NULL);
				for (int i = 0; i < t->n; i++)
					sb[i] = -sb[i];
				k = roc(sb, in->anomaly, t->n, fx, fy);
				polyline(&p, &c, fx, fy, k, palette[4 + e], clad_model_method_name(m->members[e]));
				out(&p, "<text x=\"200\" y=\"%d\" font-size=\"11\" fill=\"%s\">%s</text>\n", 215 + 15 * e,
					palette[4 + e], clad_model_method_name(m->members[e]));
			}
			k = roc(so, in->anomaly, t->n, fx, fy);
			polyline(&p, &c, fx, fy, k, palette[0], score_label);
			out(&p, "<text x=\"200\" y=\"200\" font-size=\"11\" fill=\"%s\">%s</text>\n", palette[0], score_label);
			out(&p, "</svg></div>\n");
		}
		{
			int			h[2][HIST_BINS] = {{0}};
			chart		c = {0, 1, 0, 0, 420, 320};
			double		bx[2 * HIST_BINS + 2], by[2 * HIST_BINS + 2];

			for (int i = 0; i < t->n; i++)
			{
				float		s = clad_model_calibrated_score(m, in->conf[i]);
				int			b = (int) (s * HIST_BINS);

				h[in->anomaly[i] ? 1 : 0][b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b]++;
				sb[i] = s;
			}
			for (int a = 0; a < 2; a++)
				for (int b = 0; b < HIST_BINS; b++)
					if (h[a][b] > c.y1)
						c.y1 = h[a][b];
			out(&p, "<div class=\"cell\"><h3>calibrated score of the test images</h3>\n");
			chart_begin(&p, &c, "histogram", "calibrated anomaly score", "images");
			for (int a = 0; a < 2; a++)
			{
				/* a step outline per class */
				int			k = 0;

				for (int b = 0; b < HIST_BINS; b++)
				{
					bx[k] = (double) b / HIST_BINS;
					by[k++] = h[a][b];
					bx[k] = (double) (b + 1) / HIST_BINS;
					by[k++] = h[a][b];
				}
				polyline(&p, &c, bx, by, k, palette[a ? 3 : 2], a ? "anomalous" : "normal");
			}
			out(&p, "<text x=\"60\" y=\"30\" font-size=\"11\" fill=\"%s\">normal</text>"
				"<text x=\"60\" y=\"45\" font-size=\"11\" fill=\"%s\">anomalous</text>\n", palette[2], palette[3]);
			out(&p, "</svg></div>\n</div>\n");
		}
		/* the most anomalous test images, by calibrated score */
		out(&p, "<h3>Most anomalous test images</h3>\n<div>\n");
		for (int i = 0; i < t->n; i++)
			top[i] = i;
		for (int i = 0; i < t->n && i < TOP_ANOMALIES; i++)
		{
			int			best = i;
			char		cap[96];

			for (int j = i + 1; j < t->n; j++)
				if (sb[top[j]] > sb[top[best]])
					best = j;
			{
				int			tmp = top[i];

				top[i] = top[best];
				top[best] = tmp;
			}
			if (t->labels && t->class_names && t->labels[top[i]] >= 0 && t->labels[top[i]] < t->n_classes)
				snprintf(cap, sizeof(cap), "%.3f %s", sb[top[i]], t->class_names[t->labels[top[i]]]);
			else
				snprintf(cap, sizeof(cap), "%.3f class %d%s", sb[top[i]], t->labels ? t->labels[top[i]] : -1,
						 in->anomaly[top[i]] ? "" : " (normal)");
			image(&p, t->pixels + img * top[i], t->C, t->H, t->W, cap);
		}
		out(&p, "</div>\n");
		free(so), free(sb), free(fx), free(fy), free(top);
	}
	out(&p, "<p style=\"color:#888;font-size:11px\">written by clad-train; self-contained: no network "
		"needed.</p>\n</body>\n</html>\n");
	if (fclose(p.f) != 0)
		p.ok = 0;
	p.f = NULL;
	if (!p.ok)
		st = clad_fail(CLAD_ERR_IO, "cannot write %s", path);
done:
	if (p.f)
		fclose(p.f);
	free(pick);
	free(z);
	free(cl);
	free(col);
	free(y);
	return st;
}

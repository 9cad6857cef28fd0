/* trainer/progress.c: a progress bar on a terminal, plain per-epoch lines elsewhere. */
#include "progress.h"

#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_MIN 6				/* narrower than this: no bar */
#define BAR_MAX 30

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int
terminal_width(FILE *out)
{
	struct winsize ws;

	if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

void
clad_progress_init(clad_progress_state *s, FILE *out, int quiet)
{
	memset(s, 0, sizeof(*s));
	s->out = out;
	s->last_draw = -1.0;
	s->barw = -1;
	if (quiet || !out)
		s->mode = CLAD_PROGRESS_QUIET;
	else if (isatty(fileno(out)))
		s->mode = CLAD_PROGRESS_BAR;
	else
		s->mode = CLAD_PROGRESS_LINES;
	s->width = s->mode == CLAD_PROGRESS_BAR ? terminal_width(out) : 80;
	s->last_t = now();
}

void
clad_format_duration(char *buf, size_t size, double seconds)
{
	long		t;

	if (!(seconds >= 0.0) || seconds > 360000.0 * 24)
	{
		snprintf(buf, size, "?");
		return;
	}
	t = (long) (seconds + 0.5);
	if (t >= 3600)
		snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
	else if (t >= 60)
		snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
	else
		snprintf(buf, size, "%lds", t);
}

/* The stage's extra as text: "changed 1.2%" for DEC, "acc 97.1%" for the classifier. */
static void
format_extra(char *buf, size_t size, const clad_progress *p)
{
	if (strcmp(p->stage, "dec") == 0)
		snprintf(buf, size, " changed %.2f%%", 100.0 * p->extra);
	else if (strcmp(p->stage, "classifier") == 0)
		snprintf(buf, size, " acc %.1f%%", 100.0 * p->extra);
	else
		buf[0] = '\0';
}

/* The report is the last of its stage's work. */
static int
frac_done(const clad_progress *p)
{
	return p->epoch >= p->epochs && p->done >= p->total;
}

/* The training stages report a loss; calibration and evaluation only count images. */
static int
has_loss(const char *stage)
{
	return strcmp(stage, "autoencoder") == 0 || strcmp(stage, "dec") == 0 ||
		strcmp(stage, "classifier") == 0;
}

/* Images done in the stage so far, and its share of the stage's work. */
static void
stage_work(const clad_progress *p, double *images, double *fraction)
{
	double		per = p->total > 0 ? p->total : 0;
	double		done = (p->epoch - 1) * per + p->done;
	double		all = (double) p->epochs * per;

	*images = done > 0 ? done : 0;
	*fraction = all > 0 ? done / all : 0.0;
	if (*fraction > 1.0)
		*fraction = 1.0;
	if (*fraction < 0.0)
		*fraction = 0.0;
}

/*
 * One redraw of the bar line.  The bar's width is chosen at the stage's
 * first redraw and kept (the text beside it varies a little), and the whole
 * line is cut to the terminal's width: a line that wraps could not be
 * redrawn with '\r'.  final: the stage is over (its duration, not an ETA).
 */
static void
draw_bar(clad_progress_state *s, const clad_progress *p, double t, int final)
{
	double		images, frac, elapsed = t - s->stage_start, rate;
	char		extra[32], eta[16], left[64], right[128], bar[BAR_MAX + 1], line[512];
	int			fill, cols = s->width - 1, digits = 1;
	int			done = final || frac_done(p);

	stage_work(p, &images, &frac);
	rate = elapsed > 0 ? images / elapsed : 0.0;
	format_extra(extra, sizeof(extra), p);
	if (done)
		clad_format_duration(eta, sizeof(eta), elapsed);
	else if (frac > 0.0 && elapsed > 0.0)
		clad_format_duration(eta, sizeof(eta), elapsed / frac - elapsed);
	else
		snprintf(eta, sizeof(eta), "?");

	/* autoencoder  3/30 [#####.....]  10% 1234 img/s loss 0.0123 ETA 1:02 */
	if (has_loss(p->stage))
	{
		for (int e = p->epochs; e >= 10; e /= 10)
			digits++;
		snprintf(left, sizeof(left), "%s epoch %*d/%d", p->stage, digits, p->epoch, p->epochs);
		snprintf(right, sizeof(right), " %3.0f%% %.0f img/s loss %.4g%s %s %s%s", 100.0 * frac,
				 rate, p->loss, extra, done ? "took" : "ETA", eta,
				 (final && frac < 1.0) ? ", stopped" : "");
	}
	else
	{
		snprintf(left, sizeof(left), "%s %d/%d images", p->stage, p->done, p->total);
		snprintf(right, sizeof(right), " %3.0f%% %.0f img/s %s %s", 100.0 * frac, rate,
				 done ? "took" : "ETA", eta);
	}
	if (s->barw < 0)
	{
		/* room for the text, with some slack for its longer values */
		s->barw = cols - (int) strlen(left) - (int) strlen(right) - 3 - 4;
		if (s->barw > BAR_MAX)
			s->barw = BAR_MAX;
		if (s->barw < BAR_MIN)
			s->barw = 0;
	}
	fill = (int) (frac * s->barw + 1e-9);
	for (int i = 0; i < s->barw; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[s->barw] = '\0';
	if (s->barw > 0)
		snprintf(line, sizeof(line), "%s [%s]%s", left, bar, right);
	else
		snprintf(line, sizeof(line), "%s%s", left, right);
	if (cols > 0 && cols < (int) sizeof(line))
		line[cols] = '\0';
	/* \r to the line's start, \033[K clears what a longer previous line left */
	fprintf(s->out, "\r%s\033[K", line);
	fflush(s->out);
	s->line_open = 1;
	s->last_draw = t;
}

static void
print_line(clad_progress_state *s, const clad_progress *p, double t)
{
	double		secs = t - s->epoch_start, rate = secs > 0 ? p->done / secs : 0.0;
	char		extra[32], took[16], eta[16];
	double		images, frac, elapsed = t - s->stage_start;

	stage_work(p, &images, &frac);
	clad_format_duration(took, sizeof(took), secs);
	if (frac > 0.0 && frac < 1.0)
		clad_format_duration(eta, sizeof(eta), elapsed / frac - elapsed);
	else
		snprintf(eta, sizeof(eta), "0s");
	if (!has_loss(p->stage))
	{
		fprintf(s->out, "%s: %d images, %.0f img/s, %s\n", p->stage, p->done, rate, took);
		fflush(s->out);
		return;
	}
	format_extra(extra, sizeof(extra), p);
	fprintf(s->out, "%s: epoch %d/%d loss %.6g%s, %.0f img/s, %s, ETA %s\n",
			p->stage, p->epoch, p->epochs, p->loss, extra, rate, took, eta);
	fflush(s->out);
}

/* Leave the stage on screen: its last state, then a newline. */
static void
end_stage(clad_progress_state *s)
{
	if (s->mode == CLAD_PROGRESS_BAR && s->have_last)
	{
		/* the stage may have stopped early (DEC's tolerance): show where it stopped */
		clad_progress p = s->last;

		p.stage = s->last_stage;
		draw_bar(s, &p, s->last_t, 1);
	}
	if (s->line_open)
	{
		fputc('\n', s->out);
		fflush(s->out);
		s->line_open = 0;
	}
	s->have_last = 0;
}

void
clad_progress_report(const clad_progress *p, void *arg)
{
	clad_progress_state *s = arg;
	double		t;

	if (!s || s->mode == CLAD_PROGRESS_QUIET || !p || !p->stage)
		return;
	t = now();
	if (strcmp(s->stage, p->stage) != 0)
	{
		/*
		 * The first report of a stage comes after its first batch (and, for
		 * DEC, after k-means): the stage began when the previous report was
		 * made, or at init.
		 */
		double		began = s->last_t;

		end_stage(s);
		snprintf(s->stage, sizeof(s->stage), "%s", p->stage);
		s->stage_start = began;
		s->epoch_start = began;
		s->barw = -1;
		s->epoch = p->epoch;
		s->last_draw = -1.0;
	}
	else if (p->epoch != s->epoch)
	{
		s->epoch = p->epoch;
		s->epoch_start = t;
	}
	s->last = *p;
	s->last_t = t;
	snprintf(s->last_stage, sizeof(s->last_stage), "%s", p->stage);
	s->have_last = 1;

	if (s->mode == CLAD_PROGRESS_LINES)
	{
		if (p->epoch_end)
		{
			print_line(s, p, t);
			/* the next epoch starts now (DEC's embedding pass counts to it) */
			s->epoch_start = t;
			s->epoch = p->epoch + 1;
		}
		return;
	}
	if (s->last_draw < 0 || t - s->last_draw >= CLAD_PROGRESS_REDRAW)
		draw_bar(s, p, t, 0);
}

void
clad_progress_finish(clad_progress_state *s)
{
	if (!s || s->mode == CLAD_PROGRESS_QUIET)
		return;
	end_stage(s);
	s->stage[0] = '\0';
}

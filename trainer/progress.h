/* trainer/progress.h: training feedback, a clad_progress_fn for clad_train.
 *
 * Three modes:
 *   bar    (a terminal): one line per stage, redrawn in place with '\r' at
 *          most every CLAD_PROGRESS_REDRAW seconds: stage, epoch e/E, a bar
 *          of the stage's work, images/s, the epoch's running loss, the
 *          stage's extra (DEC: labels changed; classifier: accuracy) and the
 *          stage's ETA; the line is kept when the stage ends;
 *   lines  (not a terminal): one plain line per epoch;
 *   quiet: nothing.
 * The clock only drives what is shown; it never reaches the training.
 */
#ifndef CLAD_PROGRESS_H
#define CLAD_PROGRESS_H

#include <stdio.h>

#include "train.h"

#define CLAD_PROGRESS_REDRAW 0.1	/* seconds between redraws of the bar */

typedef enum clad_progress_mode
{
	CLAD_PROGRESS_QUIET,
	CLAD_PROGRESS_LINES,
	CLAD_PROGRESS_BAR
} clad_progress_mode;

typedef struct clad_progress_state
{
	FILE	   *out;
	clad_progress_mode mode;
	int			width;			/* terminal columns (bar mode) */
	int			barw;			/* the stage's bar width, -1 until its first redraw */

	char		stage[32];		/* the stage being shown, "" before the first call */
	double		stage_start;	/* clock at the stage's first call */
	double		epoch_start;	/* clock at the epoch's first call */
	int			epoch;			/* the epoch being shown */
	double		last_draw;		/* clock at the last redraw, < 0 before any */
	int			line_open;		/* a bar line is on screen without its newline */
	int			have_last;
	clad_progress last;			/* the latest report, redrawn when the stage ends */
	double		last_t;			/* clock at that report (at init before any) */
	char		last_stage[32];
} clad_progress_state;

/*
 * Set up feedback on out: quiet when quiet is non-zero, else a bar when
 * out is a terminal, else plain lines.
 */
void		clad_progress_init(clad_progress_state *s, FILE *out, int quiet);

/* The clad_progress_fn: pass the state as arg. */
void		clad_progress_report(const clad_progress *p, void *arg);

/* End the shown stage (draw its last state, end the line). */
void		clad_progress_finish(clad_progress_state *s);

/* "1:02:03", "4:05" or "7s" for a duration in seconds (buf of 16 or more). */
void		clad_format_duration(char *buf, size_t size, double seconds);

#endif

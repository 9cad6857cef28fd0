/* trainer/cli.c: clad-train's exits: die(), die_usage() and the stop signals. */
#include "cli.h"

#include "status.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static die_hook on_die;

/*
 * SIGINT and SIGTERM (Ctrl-C, kill, systemd stopping the job): the first asks
 * core to stop at the next layer of the network (clad_set_cancel_check), so the
 * stage fails with "cancelled", die() records the run as failed and the
 * connection closes cleanly; a second one ends the process at once.
 */
static volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int sig)
{
	if (stop_signal)
	{
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_signal = sig;
}

int
stop_requested(void)
{
	return stop_signal != 0;
}

const char *
stop_prefix(void)
{
	return !stop_signal ? "" : stop_signal == SIGINT ? "interrupted by SIGINT: " : "interrupted by SIGTERM: ";
}

void
catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	clad_set_cancel_check(stop_requested);
}


void
set_die_hook(die_hook hook)
{
	on_die = hook;
}

/* Call the hook, if any, once: the process is about to exit. */
static void
run_die_hook(const char *fmt, va_list ap)
{
	die_hook	hook = on_die;

	on_die = NULL;
	if (hook)
		hook(fmt, ap);
}

void
die_usage(const char *fmt,...)
{
	va_list		ap, ap2;

	fputs("clad-train: ", stderr);
	va_start(ap, fmt);
	va_copy(ap2, ap);
	vfprintf(stderr, fmt, ap);
	run_die_hook(fmt, ap2);
	va_end(ap2);
	va_end(ap);
	fputs("\nTry 'clad-train --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

void
die(const char *fmt,...)
{
	va_list		ap, ap2;

	fprintf(stderr, "clad-train: %s", stop_prefix());
	va_start(ap, fmt);
	va_copy(ap2, ap);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	run_die_hook(fmt, ap2);
	va_end(ap2);
	va_end(ap);
	exit(EXIT_RUNTIME);
}

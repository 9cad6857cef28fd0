/* trainer/cli.h: clad-train's exits: die(), die_usage(), the exit statuses and the stop signals. */
#ifndef CLAD_CLI_H
#define CLAD_CLI_H

#include <stdarg.h>

#define EXIT_RUNTIME 1			/* a runtime error: data, training, files */
#define EXIT_USAGE 2			/* a usage error */

/* Print "clad-train: MESSAGE" and a pointer to --help on stderr, exit with EXIT_USAGE. */
void		die_usage(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

/* Print "clad-train: MESSAGE" on stderr, exit with EXIT_RUNTIME. */
void		die(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

/* Called by die() and die_usage() with their message before they exit (NULL: none). */
typedef void (*die_hook) (const char *fmt, va_list ap);
void		set_die_hook(die_hook hook);

/* Catch SIGINT and SIGTERM: the first stops training at the next layer, a second ends at once. */
void		catch_stop_signals(void);

/* Whether a stop signal came. */
int			stop_requested(void);

/* "interrupted by SIGTERM: " once a stop signal came, else "" (the start of error messages). */
const char *stop_prefix(void);

#endif

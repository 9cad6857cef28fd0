/* tests/unit/test_status.c: core's error messages (core/status.h). */
#include <string.h>

#include "status.h"
#include "testutil.h"

int
main(void)
{
	char		longer[600];

	/* the last message as an argument of the next: wrapped, never garbled */
	clad_fail(CLAD_ERR_DEVICE, "cuda:0: synchronize: an illegal memory access was encountered");
	CHECK(clad_fail(CLAD_ERR_DEVICE, "training the autoencoder: %s", clad_last_error()) == CLAD_ERR_DEVICE);
	CHECK_MSG(strcmp(clad_last_error(), "training the autoencoder: cuda:0: synchronize: an illegal memory "
					 "access was encountered") == 0, "got \"%s\"", clad_last_error());
	clad_fail(CLAD_ERR_IO, "%s", clad_last_error());
	CHECK_MSG(strcmp(clad_last_error(), "training the autoencoder: cuda:0: synchronize: an illegal memory "
					 "access was encountered") == 0, "got \"%s\"", clad_last_error());
	/* a message longer than the buffer is cut, still terminated */
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	clad_fail(CLAD_ERR_FORMAT, "%s", longer);
	CHECK(strlen(clad_last_error()) == 511);
	clad_fail(CLAD_ERR_FORMAT, "again: %s", clad_last_error());
	CHECK(strncmp(clad_last_error(), "again: xxx", 10) == 0 && strlen(clad_last_error()) == 511);
	CHECK(strcmp(clad_status_name(CLAD_ERR_DEVICE), "device failure") == 0);
	return test_summary("test_status");
}

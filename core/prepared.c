/* core/prepared.c: writing and mapping prepared models (see prepared.h). */
#include "prepared.h"
#include "net.h"

#include <xxhash.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEADER_BYTES 256
#define ALIGN 64
#define BYTE_ORDER_MARK 0x01020304u

enum
{
	SEC_SETTINGS, SEC_ENC_PARAMS, SEC_ENC_BUFFERS, SEC_ENC_PANELS,
	SEC_CLF_PARAMS, SEC_CLF_BUFFERS, SEC_CLF_PANELS, N_SECTIONS
};

typedef struct section
{
	uint64_t	off, len;
} section;

/* The header, in host byte order (the mark refuses a file from another order). */
typedef struct header
{
	char		magic[8];
	uint32_t	layout;
	uint32_t	byte_order;
	uint64_t	total_len;
	uint64_t	hash;			/* header_hash(): the header and every byte after it */
	uint8_t		source_sha256[32];
	int32_t		max_B;
	int32_t		precision;		/* clad_precision of the panels */
	int32_t		n_sections;
	section		sect[N_SECTIONS];
} header;

_Static_assert(sizeof(header) <= HEADER_BYTES, "prepared header too big");

static const char magic[8] = {'C', 'L', 'A', 'D', 'P', 'R', 'E', 'P'};

/*
 * The file's hash: XXH3-64 of the header (its hash field zero) seeded with the
 * XXH3-64 of the bytes after it, so that no byte of the file escapes it.
 */
static uint64_t
header_hash(const header *h, uint64_t body_hash)
{
	uint8_t		raw[HEADER_BYTES] = {0};
	header		copy = *h;

	copy.hash = 0;
	memcpy(raw, &copy, sizeof(copy));
	return XXH3_64bits_withSeed(raw, sizeof(raw), body_hash);
}

/* x rounded up to ALIGN. */
static uint64_t
align_up(uint64_t x)
{
	return (x + ALIGN - 1) & ~(uint64_t) (ALIGN - 1);
}

/* ------------------------------------------------------------------ writing */

typedef struct writer
{
	int			fd;
	uint64_t	at;				/* bytes written so far */
	XXH3_state_t *hash;
} writer;

/* Write n bytes and hash them. */
static clad_status
put(writer *w, const void *p, size_t n)
{
	const uint8_t *b = p;

	if (w->at >= HEADER_BYTES)
		XXH3_64bits_update(w->hash, p, n);
	while (n > 0)
	{
		ssize_t		k = write(w->fd, b, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return clad_fail(CLAD_ERR_IO, "cannot write a prepared model: %s",
							 k < 0 ? strerror(errno) : "no progress");
		b += k;
		n -= (size_t) k;
		w->at += (uint64_t) k;
	}
	return CLAD_OK;
}

/* Zeros up to the next section boundary. */
static clad_status
pad(writer *w)
{
	static const uint8_t zeros[ALIGN];
	uint64_t	n = align_up(w->at) - w->at;

	return n ? put(w, zeros, (size_t) n) : CLAD_OK;
}

/* One section from a buffer; its place recorded in s. */
static clad_status
put_section(writer *w, section *s, const void *p, size_t n)
{
	clad_status st = pad(w);

	s->off = w->at;
	s->len = n;
	return st == CLAD_OK ? put(w, p, n) : st;
}

/* Blocks of floats one after the other, as one section of total floats. */
static clad_status
put_blocks(writer *w, section *s, const clad_net *net, size_t total,
		   const float *(*next) (const clad_net *, int *, size_t *))
{
	clad_status st = pad(w);
	const float *block;
	size_t		floats;
	int			at = 0;

	s->off = w->at;
	s->len = sizeof(float) * total;
	while (st == CLAD_OK && (block = next(net, &at, &floats)) != NULL)
		st = put(w, block, sizeof(float) * floats);
	if (st == CLAD_OK && w->at - s->off != s->len)
		st = clad_fail(CLAD_ERR_INVALID, "a net's blocks do not add up");
	return st;
}

int
clad_prepared_supported(const clad_model *m)
{
	return m->method != CLAD_METHOD_ENSEMBLE;
}

/* A net's three sections (params, buffers, panels: sect[0..2]); three empty ones without a net. */
static clad_status
put_net(writer *w, section *sect, const clad_net *net)
{
	clad_status st;

	if (!net)
	{
		for (int i = 0; i < 3; i++)
			if ((st = put_section(w, &sect[i], "", 0)) != CLAD_OK)
				return st;
		return CLAD_OK;
	}
	if ((st = put_blocks(w, &sect[0], net, clad_net_kept_param_floats(net), clad_net_kept_param_block)) != CLAD_OK ||
		(st = put_section(w, &sect[1], clad_net_buffer_data(net), sizeof(float) * clad_net_num_buffers(net))) != CLAD_OK)
		return st;
	return put_blocks(w, &sect[2], net, clad_net_panel_floats(net), clad_net_panel_block);
}

clad_status
clad_prepared_write(const clad_model *m, const uint8_t sha256[32], int max_B, int fd)
{
	header		h;
	uint8_t		raw[HEADER_BYTES] = {0};
	uint8_t    *settings = NULL;
	size_t		settings_len = 0;
	writer		w = {fd, 0, NULL};
	clad_status st;

	if (m && !clad_prepared_supported(m))
		return clad_fail(CLAD_ERR_UNSUPPORTED, "a %s model has no prepared form: it is loaded from its file",
						 clad_model_method_name(m));
	if (!m || (!m->encoder && m->method != CLAD_METHOD_OCSVM) || (!m->clf && m->method == CLAD_METHOD_CLAD) ||
		max_B < 1)
		return clad_fail(CLAD_ERR_INVALID, "prepared_write needs a loaded model and max_B >= 1");
	if ((m->clf && clad_net_inference_batch(m->clf) != max_B) ||
		(m->encoder && clad_net_inference_batch(m->encoder) != max_B))
		return clad_fail(CLAD_ERR_INVALID, "prepared_write needs a model prepared for batches up to %d", max_B);
	if ((st = clad_model_save_settings(m, &settings, &settings_len)) != CLAD_OK)
		return st;
	if (!(w.hash = XXH3_createState()))
	{
		free(settings);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory hashing a prepared model");
	}
	XXH3_64bits_reset(w.hash);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, magic, sizeof(magic));
	h.layout = CLAD_PREPARED_LAYOUT;
	h.byte_order = BYTE_ORDER_MARK;
	memcpy(h.source_sha256, sha256, 32);
	h.max_B = max_B;
	h.precision = (int32_t) m->precision;
	h.n_sections = N_SECTIONS;

	/* the header's place first (written again at the end, with the hash) */
	st = put(&w, raw, sizeof(raw));
#define SECTION(call) do { if (st == CLAD_OK) st = (call); } while (0)
	SECTION(put_section(&w, &h.sect[SEC_SETTINGS], settings, settings_len));
	/* a method without a classifier (Deep SVDD) or without nets (the one-class SVM): empty sections */
	SECTION(put_net(&w, &h.sect[SEC_ENC_PARAMS], m->encoder));
	SECTION(put_net(&w, &h.sect[SEC_CLF_PARAMS], m->clf));
#undef SECTION
	free(settings);
	if (st == CLAD_OK)
	{
		ssize_t		k;

		h.total_len = w.at;
		h.hash = header_hash(&h, XXH3_64bits_digest(w.hash));
		memcpy(raw, &h, sizeof(h));
		do
			k = pwrite(fd, raw, sizeof(raw), 0);
		while (k < 0 && errno == EINTR);
		if (k != (ssize_t) sizeof(raw))
			st = clad_fail(CLAD_ERR_IO, "cannot write a prepared model's header: %s",
						   k < 0 ? strerror(errno) : "short write");
	}
	XXH3_freeState(w.hash);
	return st;
}

/* ------------------------------------------------------------------ reading */

/* The sections lie in order, aligned, inside the file, without overlap. */
static clad_status
check_sections(const header *h)
{
	uint64_t	end = HEADER_BYTES;

	for (int i = 0; i < N_SECTIONS; i++)
	{
		const section *s = &h->sect[i];

		if (s->off % ALIGN != 0 || s->off < end || s->off > h->total_len ||
			s->len > h->total_len - s->off || (i > SEC_SETTINGS && s->len % sizeof(float) != 0))
			return clad_fail(CLAD_ERR_FORMAT, "prepared model: section %d out of place", i);
		end = s->off + s->len;
	}
	if (end != h->total_len)
		return clad_fail(CLAD_ERR_FORMAT, "prepared model: %llu bytes after the last section",
						 (unsigned long long) (h->total_len - end));
	return CLAD_OK;
}

/*
 * A net of m over its three sections (params, buffers, panels: sect[0..2]),
 * each exactly the size the net needs; without the net (net NULL), empty.
 */
static clad_status
map_net(const clad_model *m, clad_net *net, const uint8_t *buf, const section *sect, int max_B, const char *which)
{
	const section *params = &sect[0], *buffers = &sect[1], *panels = &sect[2];
	clad_status st;

	if (!net)
		return params->len || buffers->len || panels->len ?
			clad_fail(CLAD_ERR_FORMAT, "prepared model: a %s model without a%s %s has %s sections",
					  clad_model_method_name(m), which[0] == 'e' ? "n" : "", which, which) : CLAD_OK;

	if (buffers->len != sizeof(float) * clad_net_num_buffers(net))
		return clad_fail(CLAD_ERR_FORMAT, "prepared model: the %s's buffers are not the size its "
						 "architecture needs", which);
	/* the kept weights and the panels are checked against the plans there */
	st = clad_net_use_mapped(net, max_B, m->precision, (const float *) (buf + params->off), params->len / sizeof(float),
							 (const float *) (buf + buffers->off),
							 (const float *) (buf + panels->off), panels->len / sizeof(float));
	if (st != CLAD_OK)
	{
		char		why[400];

		snprintf(why, sizeof(why), "%s", clad_last_error());	/* clad_fail writes over it */
		return clad_fail(st, "prepared model: the %s: %s", which, why);
	}
	return CLAD_OK;
}

clad_status
clad_prepared_open(const uint8_t *buf, size_t len, const uint8_t sha256[32], int max_B,
				   clad_precision p, clad_model **out)
{
	header		h;
	clad_model *m = NULL;
	clad_status st;

	*out = NULL;
	if (!buf || len < HEADER_BYTES)
		return clad_fail(CLAD_ERR_FORMAT, "prepared model: %zu bytes, shorter than its header", len);
	if ((uintptr_t) buf % ALIGN != 0)
		return clad_fail(CLAD_ERR_INVALID, "prepared model: the bytes must be %d-byte aligned", ALIGN);
	memcpy(&h, buf, sizeof(h));
	for (size_t i = sizeof(h); i < HEADER_BYTES; i++)
		if (buf[i] != 0)
			return clad_fail(CLAD_ERR_FORMAT, "prepared model: bytes after its header fields");
	if (memcmp(h.magic, magic, sizeof(magic)) != 0)
		return clad_fail(CLAD_ERR_FORMAT, "not a prepared clad model");
	if (h.byte_order != BYTE_ORDER_MARK)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "prepared model written on a machine of another byte order");
	if (h.layout != CLAD_PREPARED_LAYOUT)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "prepared model layout %u, this build maps %d",
						 h.layout, CLAD_PREPARED_LAYOUT);
	if (h.total_len != len)
		return clad_fail(CLAD_ERR_FORMAT, "prepared model: %zu bytes, its header says %llu",
						 len, (unsigned long long) h.total_len);
	if (h.n_sections != N_SECTIONS)
		return clad_fail(CLAD_ERR_FORMAT, "prepared model: %d sections, expected %d", h.n_sections, N_SECTIONS);
	if (h.max_B != max_B)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "prepared model for batches up to %d, not %d", h.max_B, max_B);
	if (h.precision != (int32_t) p)
		return clad_fail(CLAD_ERR_UNSUPPORTED, "prepared model in %s, not %s",
						 h.precision == CLAD_PRECISION_FP32 || h.precision == CLAD_PRECISION_BF16 ?
						 clad_precision_name((clad_precision) h.precision) : "an unknown precision",
						 clad_precision_name(p));
	if (sha256 && memcmp(h.source_sha256, sha256, 32) != 0)
		return clad_fail(CLAD_ERR_FORMAT, "prepared model: prepared from another model file");
	if ((st = check_sections(&h)) != CLAD_OK)
		return st;
	if (header_hash(&h, XXH3_64bits(buf + HEADER_BYTES, len - HEADER_BYTES)) != h.hash)
		return clad_fail(CLAD_ERR_FORMAT, "prepared model: its bytes do not match its hash");

	if ((st = clad_model_load_settings(buf + h.sect[SEC_SETTINGS].off, h.sect[SEC_SETTINGS].len, &m))
		!= CLAD_OK)
		return st;
	m->precision = p;
	st = map_net(m, m->encoder, buf, &h.sect[SEC_ENC_PARAMS], max_B, "encoder");
	if (st == CLAD_OK)
		st = map_net(m, m->clf, buf, &h.sect[SEC_CLF_PARAMS], max_B, "classifier");
	if (st != CLAD_OK)
	{
		clad_model_free(m);
		return st;
	}
	*out = m;
	return CLAD_OK;
}

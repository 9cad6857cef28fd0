/* core/net.h: a network as a list of layer calls over numbered activations.
 *
 * A clad_net is built once (clad_net_new, then one clad_net_* call per
 * layer, each returning the id of its output value), then run for any batch
 * size.  Every value has a per-image shape (C,H,W); value 0 is the input.
 * Parameters (trainable) live in one flat array with gradients and optimiser
 * state in the same layout; buffers (BatchNorm running statistics, counters)
 * in another.  Each tensor has the name PyTorch's state_dict gives it.
 *
 * Build errors are sticky: the first failure is kept and returned by
 * clad_net_finish, so a model builder can chain calls without checks.
 */
#ifndef CLAD_NET_H
#define CLAD_NET_H

#include "bf16.h"
#include "status.h"
#include "layers.h"
#include "safetensors.h"
#include "device.h"

typedef struct clad_net clad_net;

typedef enum clad_mode
{
	CLAD_EVAL = 0,				/* running statistics, no dropout, z = mu */
	CLAD_TRAIN = 1				/* batch statistics, dropout, sampled z */
} clad_mode;

/* A named tensor of the net (parameter or buffer). */
typedef struct clad_tensor_info
{
	char		name[96];
	int			ndim;
	int64_t		shape[4];
	size_t		numel;
	int			is_buffer;		/* running statistics and counters */
	int			is_counter;		/* num_batches_tracked: stored as I64 in files */
	float	   *data;			/* into the net's params or buffers */
	float	   *grad;			/* into the net's grads, NULL for buffers */
} clad_tensor_info;

/* ---- building ---- */

/* A new net whose input is (C,H,W) per image; NULL only when out of memory. */
clad_net   *clad_net_new(int C, int H, int W);
void		clad_net_free(clad_net *net);

/* Each returns the id of the output value, or -1 after an error (kept in net). */
int			clad_net_conv(clad_net *net, int in, const char *name, int OC, int k,
						  int stride, int pad, int bias);
int			clad_net_convt(clad_net *net, int in, const char *name, int OC, int k,
						   int stride, int pad, int bias);
/* BatchNorm2d over (C,H,W), or BatchNorm1d when H = W = 1 */
int			clad_net_batchnorm(clad_net *net, int in, const char *name);
/* Linear over the flattened value: (C*H*W) -> (OUT,1,1) */
int			clad_net_linear(clad_net *net, int in, const char *name, int OUT, int bias);
int			clad_net_relu(clad_net *net, int in);
int			clad_net_elu(clad_net *net, int in);
int			clad_net_sigmoid(clad_net *net, int in);
int			clad_net_dropout(clad_net *net, int in, float p);
int			clad_net_maxpool(clad_net *net, int in, int k, int stride, int pad);
/* adaptive average pooling to 1x1: (C,H,W) -> (C,1,1) */
int			clad_net_avgpool(clad_net *net, int in);
/* a + b, same shapes */
int			clad_net_add(clad_net *net, int a, int b);
/* the same data seen as (C,H,W) (element count must match) */
int			clad_net_reshape(clad_net *net, int in, int C, int H, int W);
/*
 * Variational code: in (2h,1,1) = [mu, sigma] -> z (h,1,1) = mu + sigma * N(0,1)
 * in training mode, mu in eval mode.
 */
int			clad_net_reparam(clad_net *net, int in);

/* Channels of a value (its C), or 0 for a bad id. */
int			clad_net_value_channels(const clad_net *net, int v);

/*
 * Feature taps: values whose activations stay readable after a forward on
 * the host (a classifier's mid-level and penultimate features, for the
 * neighbour score).  The architecture marks them while building; returns v.
 */
#define CLAD_NET_MAX_FEATURES 4
int			clad_net_mark_feature(clad_net *net, int v);
int			clad_net_num_features(const clad_net *net);
/* Shape (C,H,W) of feature tap i; 0 for a bad i. */
int			clad_net_feature_shape(const clad_net *net, int i, int *C, int *H, int *W);
/* Its activations (B, C,H,W) from the last host forward, or NULL (none, or on a device). */
const float *clad_net_feature(const clad_net *net, int i);

/*
 * End building: the last value added is the output.  Returns the first
 * build error, or allocates the parameters (zeroed; see architectures.h for the
 * initialisations) and returns CLAD_OK.
 */
clad_status clad_net_finish(clad_net *net);

/* ---- running ---- */

/*
 * Forward pass of B images x (B, C,H,W) in mode.  The output stays valid
 * until the next call.  Allocates activation memory the first time a
 * batch size is exceeded; never otherwise.
 */
clad_status clad_net_forward(clad_net *net, const float *x, int B, clad_mode mode);

/*
 * Output of the last forward: (B, out_numel).  On a device it is copied
 * down on the first call after each forward; NULL if that copy failed
 * (clad_last_error says why) or there was no forward.
 */
const float *clad_net_output(const clad_net *net);
size_t		clad_net_out_numel(const clad_net *net);
void		clad_net_in_shape(const clad_net *net, int *C, int *H, int *W);

/*
 * Backward pass from dout (B, out_numel), after a forward in the same mode;
 * dout NULL: from the gradient of the clad_net_loss computed since that
 * forward.  With param_grads, parameter gradients are ACCUMULATED into the
 * net's grads (zero them with clad_net_zero_grad); with dx non-NULL the
 * input gradient is written there (B, C,H,W).  Work for what is not asked
 * is skipped.
 */
clad_status clad_net_backward(clad_net *net, const float *dout, int param_grads, float *dx);

/*
 * Two nets in a row (an autoencoder: the decoder after the encoder).
 * clad_net_forward_after: net's forward pass on before's output (before's
 * last forward, its batch); clad_net_backward_through: after's backward pass
 * (dout as clad_net_backward's), then before's, from after's input
 * gradient.  On a device (both nets on the same one) the codes and their
 * gradient stay there: nothing waits for the device; on the host the
 * gradient goes through scratch (B x after's input numel floats).
 */
clad_status clad_net_forward_after(clad_net *net, const clad_net *before, clad_mode mode);
clad_status clad_net_backward_through(clad_net *after, clad_net *before, const float *dout,
									  int param_grads, float *scratch);

void		clad_net_zero_grad(clad_net *net);

/* ---- training losses on the last output (core/net_loss.c) ---- */

typedef enum clad_loss_kind
{
	CLAD_LOSS_MSE,				/* mean of (out - target)^2 */
	CLAD_LOSS_CROSS_ENTROPY,	/* softmax(out / T) against labels, mean over rows */
	CLAD_LOSS_DEC_KL,			/* DEC: KL(P || Q) of the codes' soft assignment */
	CLAD_LOSS_SVDD				/* Deep SVDD: mean over rows of |out - centre|^2 */
} clad_loss_kind;

/* What a loss reads (host memory) and what it gives back besides its value. */
typedef struct clad_loss_spec
{
	clad_loss_kind kind;
	const float *target;		/* MSE: (B, out_numel) */
	const int32_t *labels;		/* cross-entropy: (B), each in [0, out_numel) */
	float		T;				/* cross-entropy temperature (> 0) */
	const float *centers;		/* DEC: (K, out_numel) cluster centres; SVDD: (out_numel) */
	int			K;				/* DEC: clusters */
	float		alpha;			/* DEC: Student's t degrees of freedom (> 0) */
	float	   *dcenters;		/* DEC: (K, out_numel) the loss's gradient wrt the centres is
								 * written here, or NULL */
	int		   *correct;		/* cross-entropy: rows whose first largest logit is the label,
								 * or NULL */
} clad_loss_spec;

/*
 * The loss of the last forward's output (B rows) in *loss, and its
 * gradient, kept in the net for clad_net_backward(net, NULL, ...).  On a
 * device the loss runs there as kernels (core/device_kernels.h): only the spec's
 * inputs go up and the value (plus correct / dcenters) comes down; on the
 * host it is core/loss.c's function.  A non-finite loss is returned as is
 * (the caller decides); bad arguments are CLAD_ERR_INVALID.
 */
clad_status clad_net_loss(clad_net *net, const clad_loss_spec *spec, float *loss);

/*
 * With stochastic off, training mode keeps batch statistics but draws no
 * dropout masks and no variational noise (z = mu): for parity tests and
 * deterministic evaluation of the training graph.  On by default.
 */
void		clad_net_set_stochastic(clad_net *net, int on);

/* Seed the generator that draws dropout masks and variational noise. */
void		clad_net_seed(clad_net *net, uint64_t seed);

/* ---- parameters ---- */

size_t		clad_net_num_tensors(const clad_net *net);
const clad_tensor_info *clad_net_tensor(const clad_net *net, size_t i);
const clad_tensor_info *clad_net_find(const clad_net *net, const char *name);
size_t		clad_net_num_params(const clad_net *net);	/* trainable floats */
float	   *clad_net_params(clad_net *net);
float	   *clad_net_grads(clad_net *net);

/* Adam / SGD step over all trainable parameters (state allocated on first use). */
clad_status clad_net_adam_step(clad_net *net, clad_adam *opt);
clad_status clad_net_sgd_step(clad_net *net, clad_sgd *opt);

/* Add every tensor as prefix + name (F32; counters as I64). */
clad_status clad_net_save(const clad_net *net, clad_st_writer *w, const char *prefix);

/*
 * Load every tensor prefix + name from f, requiring each to be present with
 * exactly the right shape and dtype and finite; nothing is changed on error.
 */
clad_status clad_net_load(clad_net *net, const clad_st_file *f, const char *prefix);

/*
 * The same without a staging copy, for a net the caller throws away when
 * loading fails: on error its parameters and buffers are left zeroed.
 */
clad_status clad_net_load_in_place(clad_net *net, const clad_st_file *f, const char *prefix);

/*
 * Prepare eval-mode passes (forward and input gradient) for batches up to
 * max_B: convolutions on small maps get an inference plan with their weights
 * packed once (see tapconv.h).  Call after the weights are final (loading or
 * training drops the plans: they would be stale).
 */
clad_status clad_net_prepare_inference(clad_net *net, int max_B);

/*
 * The same with the plans' weights in precision p (bf16.h): fp32 is
 * clad_net_prepare_inference; bf16 rounds the planned convolutions' weights
 * to bfloat16 (the other layers keep their floats).
 */
clad_status clad_net_prepare_inference_in(clad_net *net, int max_B, clad_precision p);

/* The precision of the net's inference plans (fp32 when it has none). */
clad_precision clad_net_precision(const clad_net *net);

/*
 * After clad_net_prepare_inference: hand back to the operating system the
 * memory of the convolution weights that the inference plans replace (the
 * plans hold their own packed copies, without the taps that only meet
 * padding).
 * The net then runs only eval passes of batches up to max_B; anything else
 * (training mode, bigger batches, training steps, saving, preparing again)
 * is refused with CLAD_ERR_INVALID until clad_net_load loads the weights
 * again.  Returns the bytes released.  For hosts that only score (the
 * database extension), where it roughly halves a model's resident memory.
 */
size_t		clad_net_release_planned_weights(clad_net *net);

/* ---- packed weights out of a net, and a net on weights mapped from a file ---- */

/* The batch size the net was prepared for (clad_net_prepare_inference or
 * clad_net_use_mapped), 0 when it was not. */
int			clad_net_inference_batch(const clad_net *net);
size_t		clad_net_num_buffers(const clad_net *net);	/* buffer floats */
const float *clad_net_buffer_data(const clad_net *net);

/*
 * After clad_net_prepare_inference: every inference plan's packed panels in
 * 4-byte units (floats, or pairs of bfloat16), and the plans' panel blocks
 * one by one in layer order (start with *at = 0; NULL after the last).
 */
size_t		clad_net_panel_floats(const clad_net *net);
const float *clad_net_panel_block(const clad_net *net, int *at, size_t *floats);

/*
 * While on, nets this thread finishes get no weight memory at all: they run
 * nothing and load nothing until clad_net_use_mapped gives them weights
 * (core/prepared.c builds its models so, sparing the allocation it would
 * throw away).
 */
void		clad_net_defer_weights(int on);

/*
 * After clad_net_prepare_inference: the parameters that scoring still reads
 * (all but the weights the packed panels replace): their floats, and the
 * tensors one by one in order (start with *at = 0; NULL after the last).
 */
size_t		clad_net_kept_param_floats(const clad_net *net);
const float *clad_net_kept_param_block(const clad_net *net, int *at, size_t *floats);

/*
 * Make a finished net that was never prepared a scoring-only view of weights
 * kept elsewhere (a mapped prepared file): params (param_floats: the kept
 * parameter blocks one after the other), buffers (clad_net_num_buffers
 * floats) and panels (panel_floats: the panel blocks, of the given precision), all as
 * written from a net of this architecture prepared in that precision.  The net never writes or frees them;
 * they must outlive it.  It then behaves like a prepared net whose weights
 * were released (eval passes of batches up to max_B only; the replaced
 * weights read as zeros), and refuses to load weights.  On error (sizes not
 * what the net needs) the net is unchanged.
 */
clad_status clad_net_use_mapped(clad_net *net, int max_B, clad_precision precision,
								const float *params, size_t param_floats,
								const float *buffers, const float *panels, size_t panel_floats);

/* ---- nets on a device ---- */

/*
 * Move a finished net onto dev (device.h), or back to the host with dev
 * NULL.  Its parameters, buffers, gradients and optimiser state go with it
 * (copied up; copied back when it returns), and every pass and optimiser
 * step then runs on the device.  The calls stay the same: forward takes the
 * input from host memory, clad_net_output is a host copy, backward takes
 * dout (or the loss's gradient, kept on the device) and writes dx in host
 * memory, clad_net_loss runs as kernels; dropout masks and variational
 * noise are drawn on the host from the net's generator, so a device run
 * draws the same numbers as a CPU run.  While on a device the host copies of the
 * tensors (clad_net_params, clad_net_tensor) are stale until
 * clad_net_sync_host, and saving, loading and preparing for inference are
 * refused.  Inference plans and released or mapped weights are CPU-only: such a
 * net is refused.  On error the net stays where it was.
 */
clad_status clad_net_to_device(clad_net *net, clad_device *dev);

/* The device the net is on, NULL on the host. */
clad_device *clad_net_device(const clad_net *net);

/* Copy the parameters and buffers of a net on a device down into its host tensors. */
clad_status clad_net_sync_host(clad_net *net);

#endif

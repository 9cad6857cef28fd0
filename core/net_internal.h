/* core/net_internal.h: the insides of a clad_net, shared by the net_*.c
 * files; private to core. */
#ifndef CLAD_NET_INTERNAL_H
#define CLAD_NET_INTERNAL_H

#include "net.h"
#include "tapconv.h"
#include "device_impl.h"

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f

typedef enum op_kind
{
	OP_CONV, OP_CONVT, OP_BN, OP_LINEAR, OP_RELU, OP_ELU, OP_SIGMOID, OP_DROPOUT,
	OP_MAXPOOL, OP_AVGPOOL, OP_ADD, OP_RESHAPE, OP_REPARAM
} op_kind;

typedef struct value_info
{
	int			C, H, W;
	size_t		numel;			/* per image */
	int			alias;			/* value whose memory this one shares, or -1 */
} value_info;

typedef struct net_op
{
	op_kind		kind;
	int			in, in2, out;	/* value ids (in2: second addend) */
	int			w, b;			/* tensor ids: weight/gamma, bias/beta, or -1 */
	int			rm, rv, nbt;	/* BatchNorm buffers */
	int			k, stride, pad;
	float		p;				/* dropout probability */
	float	   *save_mean, *save_invstd;	/* BatchNorm batch statistics (C) */
	int32_t    *argmax;			/* max pool winners (cap_B x out numel) */
	float	   *noise;			/* dropout mask or reparam noise (cap_B x out numel) */
	clad_tapconv *inference_plan;	/* packed weights for eval passes (net_plans.c), or NULL */
	clad_tapconv *training_plan;	/* for the passes that read the weights, or NULL */
	int			released;		/* weights handed back: only the inference plan may run */
	/* on a device (net_device.c): the same run-time state in device memory */
	float	   *d_save_mean, *d_save_invstd, *d_noise;
	int32_t    *d_argmax;
} net_op;

struct clad_net
{
	clad_status err;
	char		errmsg[256];

	value_info *vals;
	int			nvals, cap_vals;
	net_op	   *ops;
	int			nops, cap_ops;
	clad_tensor_info *tens;
	size_t	   *tens_off;
	int			ntens, cap_tens;
	int			finished;
	int			features[CLAD_NET_MAX_FEATURES];	/* feature taps: value ids */
	int			nfeatures;

	float	   *params, *grads, *opt_m, *opt_v;
	size_t		nparams;
	float	   *buffers;
	size_t		nbuffers;

	/* run time */
	int			cap_B;			/* batch size the activations are sized for */
	int			grads_ready;	/* grad_act allocated for cap_B */
	int			cur_B;
	clad_mode	cur_mode;
	int			have_forward;
	float	  **act;			/* per value (value 0: the caller's input) */
	float	  **gact;			/* per value gradient */
	float	   *scratch;
	size_t		scratch_floats;
	clad_rng	rng;
	int			deterministic;	/* training mode without dropout and noise */
	int			inference_max_B;	/* eval batches up to this use the inference plans */
	int			released;		/* some weights were released (clad_net_release_planned_weights) */
	int			mapped;			/* params, buffers and panels live in the caller's memory
								 * (clad_net_use_mapped): read only, never freed here */
	int			weightless;		/* finished without weights (clad_net_defer_weights),
								 * waiting for clad_net_use_mapped */
	/* the last clad_net_loss (net_loss.c): its gradient (host: loss_grad) */
	int			have_loss;		/* computed since the last forward */
	float	   *loss_grad;		/* host: gradient, then DEC's q and p */
	size_t		loss_floats;	/* capacity of loss_grad */

	/*
	 * On a device (net_device.c; dev NULL on the host): weights, gradients,
	 * optimiser state and activations live in device memory, the host
	 * arrays above keep the last copy brought back.
	 */
	clad_device *dev;
	float	   *d_params, *d_grads, *d_opt_m, *d_opt_v, *d_buffers;
	float	  **d_act, **d_gact;	/* per value; d_act[0] the uploaded input */
	float	   *d_scratch;
	size_t		d_scratch_floats;
	int			d_cap_B;		/* batch size the device activations are sized for */
	int			d_grads_ready;
	float	   *host_out;		/* the last output, downloaded (d_cap_B x out numel) */
	int			host_out_fresh;	/* host_out holds the last forward's output */
	void	   *d_loss_ws;		/* device workspace of clad_net_loss, d_loss_bytes long */
	size_t		d_loss_bytes;
	float	   *d_loss_grad;	/* in it: the last loss's gradient (B x out numel) */
};

/*
 * The files of a net, each calling only those below it:
 *   net.c        the public calls: building, parameters, saving and loading;
 *                each pass and step dispatched to the host or the device
 *   net_loss.c   clad_net_loss, on the host or the device
 *   net_plans.c  the small-map convolution plans, mapped weights
 *   net_host.c   the passes on the host
 *   net_device.c the passes and memory on a device
 */

/* net_host.c */
void		net_host_conv_geom(const clad_net *net, const net_op *op, int B, clad_conv_geom *g);
size_t		net_host_scratch_floats(const clad_net *net, int B);	/* the most any op needs at batch B */
/* net->scratch holds at least need floats (what it held is not kept); 0 when out of memory */
int			net_host_grow_scratch(clad_net *net, size_t need);
/* x (B, C,H,W) -> the output (B, out numel), kept in net->act; as clad_net_forward */
clad_status net_host_forward(clad_net *net, const float *x, int B, clad_mode mode);
/* dout (B, out numel), or the loss's gradient when NULL -> dx (B, C,H,W) or NULL; as clad_net_backward */
clad_status net_host_backward(clad_net *net, const float *dout, int param_grads, float *dx);
void		net_host_free_runtime(clad_net *net);	/* activations, their gradients, per-op state */

/* net_plans.c */
clad_status net_build_training_plans(clad_net *net);
void		net_drop_inference_plans(clad_net *net);
void		net_free_plans(clad_net *net);	/* both kinds */

/* net_device.c: the device side of net.h's calls (dev set) */
clad_status net_device_forward(clad_net *net, const float *x, int B, clad_mode mode);
/* forward from before's output, on the same device */
clad_status net_device_forward_after(clad_net *net, const clad_net *before, clad_mode mode);
const float *net_device_output(clad_net *net);	/* downloaded once per forward */
clad_status net_device_backward(clad_net *net, const float *dout, int param_grads, float *dx);
/* after's backward pass, then before's from after's input gradient, kept on the device */
clad_status net_device_backward_through(clad_net *after, clad_net *before, const float *dout,
										int param_grads);
void		net_device_zero_grad(clad_net *net);
clad_status net_device_adam_step(clad_net *net, clad_adam *opt);
clad_status net_device_sgd_step(clad_net *net, clad_sgd *opt);
clad_status net_device_sync_host(clad_net *net);	/* parameters and buffers down */
/* everything down, optimiser state included */
clad_status net_device_bring_back(clad_net *net);
/* the host state up to dev; on error nothing is left allocated there */
clad_status net_device_send_up(clad_net *net, clad_device *dev);
/* free every device allocation of the net without bringing anything back */
void		net_device_release(clad_net *net);
void		net_device_free_loss(clad_net *net);	/* the loss's workspace */
/* the error for what a net on a device refuses (saving, loading, planning) */
clad_status net_device_refuse(const clad_net *net, const char *what);

#endif

/* core/architectures.c: reference autoencoders and classifiers, and their initialisations. */
#include "architectures.h"

#include <stdio.h>
#include <string.h>

static const char *const ae_archs[] = {"cvae", "cvae_large", "linear", "cvae_nobias", NULL};
static const char *const clf_archs[] = {"resnet18", "cnn", "cnn_large", "fc3", "linear", NULL};

/* Whether s is one of the NULL-terminated list. */
static int
in_list(const char *const *list, const char *s)
{
	for (int i = 0; s && list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

int
clad_is_autoencoder_arch(const char *arch)
{
	return in_list(ae_archs, arch);
}

int
clad_is_classifier_arch(const char *arch)
{
	return in_list(clf_archs, arch);
}

/* conv (bias) + BatchNorm + activation, as the cvae_large and cnn blocks */
static int
conv_bn_act(clad_net *n, int x, const char *conv, const char *bn, int OC, int elu)
{
	x = clad_net_conv(n, x, conv, OC, 3, 1, 1, 1);
	x = clad_net_batchnorm(n, x, bn);
	return elu ? clad_net_elu(n, x) : clad_net_relu(n, x);
}

/* Finish n into *out, or free it. */
static clad_status
finish_or_free(clad_net *n, clad_net **out)
{
	clad_status st = clad_net_finish(n);

	if (st != CLAD_OK)
	{
		clad_net_free(n);
		return st;
	}
	*out = n;
	return CLAD_OK;
}

clad_status
clad_autoencoder_build(const char *arch, int C, int H, int W, int latent,
					   clad_net **encoder, clad_net **decoder)
{
	clad_net   *e, *d;
	int			x;
	clad_status st;

	*encoder = NULL;
	if (decoder)
		*decoder = NULL;
	if (!clad_is_autoencoder_arch(arch))
		return clad_fail(CLAD_ERR_INVALID, "unknown autoencoder \"%s\" (cvae, cvae_large, linear, cvae_nobias)",
						 arch ? arch : "");
	if (latent <= 0 || latent > 65536)
		return clad_fail(CLAD_ERR_INVALID, "latent size must be in 1..65536, not %d", latent);
	if (strcmp(arch, "linear") != 0 && (H % 4 != 0 || W % 4 != 0))
		return clad_fail(CLAD_ERR_SHAPE, "%s needs height and width divisible by 4, not %dx%d",
						 arch, H, W);
	e = clad_net_new(C, H, W);
	d = clad_net_new(latent, 1, 1);
	if (!e || !d)
	{
		clad_net_free(e);
		clad_net_free(d);
		return clad_fail(CLAD_ERR_NOMEM, "out of memory building %s", arch);
	}
	if (strcmp(arch, "cvae") == 0 || strcmp(arch, "cvae_nobias") == 0)
	{
		/* cvae_nobias: the same encoder without bias terms, for Deep SVDD (whose
		 * objective a bias could meet by mapping every image to the centre) */
		int			eb = strcmp(arch, "cvae") == 0;

		x = clad_net_dropout(e, 0, 0.1f);
		x = clad_net_elu(e, clad_net_conv(e, x, "conv1", 4 * C, 3, 1, 1, eb));
		x = clad_net_maxpool(e, x, 2, 2, 0);
		x = clad_net_elu(e, clad_net_conv(e, x, "conv2", 8 * C, 3, 1, 1, eb));
		x = clad_net_maxpool(e, x, 2, 2, 0);
		x = clad_net_elu(e, clad_net_conv(e, x, "conv3", 16 * C, 3, 1, 1, eb));
		x = clad_net_relu(e, clad_net_linear(e, x, "fc1", 512, eb));
		x = clad_net_linear(e, x, "fc2", 2 * latent, eb);
		clad_net_reparam(e, x);

		x = clad_net_relu(d, clad_net_linear(d, 0, "fc1", 512, 1));
		x = clad_net_relu(d, clad_net_linear(d, x, "fc2", 16 * C * (H / 4) * (W / 4), 1));
		x = clad_net_reshape(d, x, 16 * C, H / 4, W / 4);
		x = clad_net_elu(d, clad_net_convt(d, x, "deconv1", 8 * C, 4, 2, 1, 1));
		x = clad_net_elu(d, clad_net_convt(d, x, "deconv2", 4 * C, 4, 2, 1, 1));
		clad_net_sigmoid(d, clad_net_conv(d, x, "conv", C, 3, 1, 1, 1));
	}
	else if (strcmp(arch, "cvae_large") == 0)
	{
		x = conv_bn_act(e, 0, "conv1", "bn1", 16 * C, 1);
		x = conv_bn_act(e, x, "conv2", "bn2", 16 * C, 1);
		x = clad_net_maxpool(e, x, 2, 2, 0);
		x = conv_bn_act(e, x, "conv3", "bn3", 32 * C, 1);
		x = conv_bn_act(e, x, "conv4", "bn4", 32 * C, 1);
		x = clad_net_maxpool(e, x, 2, 2, 0);
		x = conv_bn_act(e, x, "conv5", "bn5", 64 * C, 1);
		x = conv_bn_act(e, x, "conv6", "bn6", 64 * C, 1);
		x = clad_net_relu(e, clad_net_linear(e, x, "fc1", 512, 1));
		x = clad_net_linear(e, x, "fc2", 2 * latent, 1);
		clad_net_reparam(e, x);

		x = clad_net_relu(d, clad_net_linear(d, 0, "fc1", 512, 1));
		x = clad_net_relu(d, clad_net_linear(d, x, "fc2", 64 * C * (H / 4) * (W / 4), 1));
		x = clad_net_reshape(d, x, 64 * C, H / 4, W / 4);
		x = conv_bn_act(d, x, "conv1", "bn1", 64 * C, 1);
		x = clad_net_convt(d, x, "deconv1", 32 * C, 4, 2, 1, 1);
		x = clad_net_elu(d, clad_net_batchnorm(d, x, "bn2"));
		x = conv_bn_act(d, x, "conv2", "bn3", 32 * C, 1);
		x = clad_net_convt(d, x, "deconv2", 16 * C, 4, 2, 1, 1);
		x = clad_net_elu(d, clad_net_batchnorm(d, x, "bn4"));
		x = conv_bn_act(d, x, "conv3", "bn5", 16 * C, 1);
		clad_net_sigmoid(d, clad_net_conv(d, x, "conv4", C, 3, 1, 1, 1));
	}
	else
	{
		/* DEC's MLP: d-500-500-2000-h and back */
		int			dim = C * H * W;

		x = clad_net_relu(e, clad_net_linear(e, 0, "fc1", 500, 1));
		x = clad_net_relu(e, clad_net_linear(e, x, "fc2", 500, 1));
		x = clad_net_relu(e, clad_net_linear(e, x, "fc3", 2000, 1));
		clad_net_linear(e, x, "fc4", latent, 1);

		x = clad_net_relu(d, clad_net_linear(d, 0, "fc1", 2000, 1));
		x = clad_net_relu(d, clad_net_linear(d, x, "fc2", 500, 1));
		x = clad_net_relu(d, clad_net_linear(d, x, "fc3", 500, 1));
		x = clad_net_linear(d, x, "fc4", dim, 1);
		clad_net_reshape(d, x, C, H, W);
	}
	if ((st = finish_or_free(e, encoder)) != CLAD_OK)
	{
		clad_net_free(d);
		return st;
	}
	if (!decoder)
	{
		clad_net_free(d);		/* never finished: no weight memory was taken */
		return CLAD_OK;
	}
	if ((st = finish_or_free(d, decoder)) != CLAD_OK)
	{
		clad_net_free(*encoder);
		*encoder = NULL;
		return st;
	}
	return CLAD_OK;
}

/* torchvision's BasicBlock: conv3x3-bn-relu-conv3x3-bn, + identity or downsample, relu */
static int
basic_block(clad_net *n, int x, const char *prefix, int planes, int stride)
{
	char		a[64], b[64];
	int			y, id = x;

	snprintf(a, sizeof(a), "%s.conv1", prefix);
	snprintf(b, sizeof(b), "%s.bn1", prefix);
	y = clad_net_relu(n, clad_net_batchnorm(n, clad_net_conv(n, x, a, planes, 3, stride, 1, 0), b));
	snprintf(a, sizeof(a), "%s.conv2", prefix);
	snprintf(b, sizeof(b), "%s.bn2", prefix);
	y = clad_net_batchnorm(n, clad_net_conv(n, y, a, planes, 3, 1, 1, 0), b);
	if (stride != 1 || clad_net_value_channels(n, x) != planes)
	{
		snprintf(a, sizeof(a), "%s.downsample.0", prefix);
		snprintf(b, sizeof(b), "%s.downsample.1", prefix);
		id = clad_net_batchnorm(n, clad_net_conv(n, x, a, planes, 1, stride, 0, 0), b);
	}
	return clad_net_relu(n, clad_net_add(n, y, id));
}

clad_status
clad_classifier_build(const char *arch, int C, int H, int W, int K, clad_net **out)
{
	clad_net   *n;
	int			x;

	*out = NULL;
	if (!clad_is_classifier_arch(arch))
		return clad_fail(CLAD_ERR_INVALID,
						 "unknown classifier \"%s\" (resnet18, cnn, cnn_large, fc3, linear)",
						 arch ? arch : "");
	if (K < 2 || K > 65536)
		return clad_fail(CLAD_ERR_INVALID, "number of classes must be in 2..65536, not %d", K);
	if (!(n = clad_net_new(C, H, W)))
		return clad_fail(CLAD_ERR_NOMEM, "out of memory building %s", arch);
	if (strcmp(arch, "resnet18") == 0)
	{
		static const int planes[4] = {64, 128, 256, 512};
		char		name[32];

		x = clad_net_relu(n, clad_net_batchnorm(n, clad_net_conv(n, 0, "conv1", 64, 7, 2, 3, 0), "bn1"));
		x = clad_net_maxpool(n, x, 3, 2, 1);
		for (int l = 0; l < 4; l++)
			for (int blk = 0; blk < 2; blk++)
			{
				snprintf(name, sizeof(name), "layer%d.%d", l + 1, blk);
				x = basic_block(n, x, name, planes[l], (l > 0 && blk == 0) ? 2 : 1);
				if (l == 1 && blk == 1)
					clad_net_mark_feature(n, x);	/* layer2's output */
			}
		x = clad_net_mark_feature(n, clad_net_avgpool(n, x));
		clad_net_linear(n, x, "fc", K, 1);
	}
	else if (strcmp(arch, "cnn") == 0 || strcmp(arch, "cnn_large") == 0)
	{
		int			large = strcmp(arch, "cnn_large") == 0;

		x = conv_bn_act(n, 0, "conv1", "bn1", large ? 8 * C : 16, large);
		x = conv_bn_act(n, x, "conv2", "bn2", large ? 16 * C : 32, large);
		x = clad_net_mark_feature(n, clad_net_maxpool(n, x, 2, 2, 0));
		x = conv_bn_act(n, x, "conv3", "bn3", large ? 32 * C : 64, 0);
		x = clad_net_maxpool(n, x, 2, 2, 0);
		x = clad_net_relu(n, clad_net_batchnorm(n, clad_net_linear(n, x, "fc1", 128, 1), "bn4"));
		x = clad_net_relu(n, clad_net_batchnorm(n, clad_net_linear(n, x, "fc2", 64, 1), "bn5"));
		clad_net_linear(n, clad_net_mark_feature(n, x), "fc3", K, 1);
	}
	else if (strcmp(arch, "fc3") == 0)
	{
		int			dim = C * H * W;

		x = clad_net_mark_feature(n, clad_net_linear(n, 0, "fc1", dim, 1));
		x = clad_net_mark_feature(n, clad_net_linear(n, x, "fc2", dim, 1));
		clad_net_linear(n, x, "fc3", K, 1);
	}
	else
		clad_net_linear(n, clad_net_mark_feature(n, 0), "fc", K, 1);
	return finish_or_free(n, out);
}

/* Whether s ends with suffix. */
static int
ends_with(const char *s, const char *suffix)
{
	size_t		a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* fan_in, fan_out of a weight as PyTorch computes them (dim 1 and dim 0 times the kernel) */
static void
fans(const clad_tensor_info *t, int *fan_in, int *fan_out)
{
	int64_t		rf = 1;

	for (int i = 2; i < t->ndim; i++)
		rf *= t->shape[i];
	*fan_in = (int) (t->shape[1] * rf);
	*fan_out = (int) (t->shape[0] * rf);
}

/*
 * Walk the tensors in order (scheme 0: autoencoder, 1: ResNet, 2: PyTorch
 * defaults).  A 1-D weight is a BatchNorm gamma; a bias right after one is
 * its beta.
 */
static void
init_tensors(clad_net *net, int scheme, uint64_t seed)
{
	clad_rng	r;
	size_t		n = clad_net_num_tensors(net);
	int			last_fan_in = 1;

	clad_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
	{
		clad_tensor_info *t = (clad_tensor_info *) clad_net_tensor(net, i);
		int			fan_in, fan_out;

		if (t->is_buffer)
			continue;			/* running stats keep their 0 / 1 defaults */
		if (ends_with(t->name, ".weight") && t->ndim == 1)
		{
			for (size_t j = 0; j < t->numel; j++)
				t->data[j] = 1.0f;	/* BatchNorm gamma */
			continue;
		}
		if (ends_with(t->name, ".bias"))
		{
			/* BatchNorm beta and autoencoder biases are 0; PyTorch's default otherwise */
			const clad_tensor_info *prev = i > 0 ? clad_net_tensor(net, i - 1) : NULL;

			if (scheme == 0 || (prev && prev->ndim == 1))
				for (size_t j = 0; j < t->numel; j++)
					t->data[j] = 0.0f;
			else
				clad_init_torch_default(t->data, t->numel, last_fan_in, &r);
			continue;
		}
		fans(t, &fan_in, &fan_out);
		last_fan_in = fan_in;
		if (scheme == 0)
			clad_init_xavier_uniform(t->data, t->numel, fan_in, fan_out, &r);
		else if (scheme == 1 && t->ndim == 4)
			clad_init_kaiming_normal_fan_out(t->data, t->numel, fan_out, &r);
		else
			clad_init_torch_default(t->data, t->numel, fan_in, &r);
	}
}

void
clad_autoencoder_init(clad_net *net, uint64_t seed)
{
	init_tensors(net, 0, seed);
}

void
clad_classifier_init(clad_net *net, const char *arch, uint64_t seed)
{
	init_tensors(net, strcmp(arch, "resnet18") == 0 ? 1 : 2, seed);
}

/* core/architectures.h: the reference architectures (REFERENCE.md) and their initialisations.
 *
 * Autoencoders: "cvae", "cvae_large", "linear".  The encoder maps an image
 * (C,H,W) to its latent code z (h,1,1) (sampled in training mode, the mean
 * in eval mode); the decoder maps z back to (C,H,W).
 * Classifiers: "resnet18", "cnn", "cnn_large", "fc3", "linear": image
 * (C,H,W) -> K logits.
 * Tensor names follow PyTorch's state_dict of the reference modules
 * (torchvision's for ResNet-18).
 */
#ifndef CLAD_ARCHITECTURES_H
#define CLAD_ARCHITECTURES_H

#include "net.h"

/*
 * Build an autoencoder; on success *encoder and *decoder are finished nets.
 * decoder may be NULL where only the encoder is wanted (a model loaded to
 * score): the decoder then never gets memory.
 */
clad_status clad_autoencoder_build(const char *arch, int C, int H, int W, int latent,
								   clad_net **encoder, clad_net **decoder);

/* Build a classifier with K outputs. */
clad_status clad_classifier_build(const char *arch, int C, int H, int W, int K, clad_net **out);

/*
 * Initialise as the reference does, from a seeded generator: autoencoders
 * Xavier-uniform weights and zero biases; ResNet-18 Kaiming-normal (fan_out)
 * convs and PyTorch's default for fc; the other classifiers PyTorch's
 * defaults.  BatchNorm: weight 1, bias 0, running mean 0, variance 1.
 */
void		clad_autoencoder_init(clad_net *net, uint64_t seed);
void		clad_classifier_init(clad_net *net, const char *arch, uint64_t seed);

/* Non-zero when arch names a known autoencoder / classifier. */
int			clad_is_autoencoder_arch(const char *arch);
int			clad_is_classifier_arch(const char *arch);

#endif

"""Teacher label maps for TokenMix: the TokenLabeling file format, its safe reader, and a generator.

Modules: :mod:`.map_file` (one map file: its path, reader, writer, errors), :mod:`.record` (the settings record of a
folder of maps), :mod:`.stores` (the two layouts training reads: a folder of files or a pack), :mod:`.pack` (folder
-> pack), :mod:`.teacher` (the dense teacher a generator runs) and :mod:`.generate` (writing the maps).

**Format** (TokenLabeling ``generate_label.py``, read by TokenLabeling's and TokenMix's ``DatasetTokenLabel``; the
published NFNet-F6 maps, "label_top5_train_nfnet", are in it): one file per training image,
``<root>/<class folder>/<image stem>.pt``, holding a single tensor of shape ``2×k×H×W`` (float16):
``[0]`` the teacher's top-k class scores at each location of its H×W output grid over the whole image (TokenLabeling's
generator stores the raw scores of the classifier applied at every location), ``[1]`` the k class indices (stored
as floats, exact up to 2048 classes). TokenMix scatters them into a dense map, RoIAligns it to each sample's crop and takes
the ground-truth channel (:func:`pretrain.mix.tokenmix.crop_label_maps`).

The reader loads through the project's weight reader (:func:`mixcore.weights.read.read_file`:
``torch.load(weights_only=True)``; a tensor, nothing else is accepted) and checks shape and indices; a missing or
corrupt file is a :class:`LabelMapError` naming the image and the file.

**Packed variant** (:func:`pack_label_maps`, CLI ``tools/pack_label_maps.py``; read by :class:`LabelMapPack`): the
same tensors in two memory-mapped ``.npy`` arrays (scores float16, indices int16) and a JSON index. For large runs:
ImageNet's 1.28 M map files become 3 files, so a network or parallel file system serves one open instead of one
per sample, a worker reads a map as a slice of a page-cached array instead of unpacking a zip (``torch.save``'s
format) per sample, and copying the maps to a node's local disk is one transfer (measured on the demo's 400 maps,
one CPU thread: 1.4 ms per map from files, 0.04 ms from the pack). Values are identical (float16 as stored). :func:`open_label_maps` picks the reader from what the folder holds.

**Generator** (:func:`generate_label_maps`, CLI ``tools/make_label_maps.py``): any local teacher — a timm CNN
(classifier applied at every location of the last feature map: the class activation map of every class, plus the
bias, as TokenLabeling's ``TokenLabelHead``) or a ViT/PVT (the head applied to every patch token) — on the whole
image resized to the teacher's input size; top-k kept. Scores: per-location class probabilities (softmax over the
classes, default) or raw scores (``scores='logits'``, TokenLabeling's files). TokenMix takes the ground-truth
channel as an activation map and divides by its sum without a clamp (the official rule): raw scores of a weak
teacher are often negative (demo teacher after one epoch: Â in [-34, 30]), probabilities are not. Resumable (finished files are skipped; each file is written
atomically), sharded over ranks (torchrun ``RANK``/``WORLD_SIZE`` or slurm ``SLURM_PROCID``/``SLURM_NTASKS``),
unreadable images listed in a JSON report.
"""

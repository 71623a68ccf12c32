"""Stage-2 backbones. Each module registers into its host's registry on import and imports only that host:
``mixseg.backbones.vit`` → mmseg ``MODELS`` ('MixsegViT'), ``mixseg.backbones.pvt`` → mmdet ``MODELS``
('MixsegPVT'). Configs reach them through ``custom_imports``; nothing here is imported eagerly so that a
segmentation run does not need mmdet and vice versa.
"""

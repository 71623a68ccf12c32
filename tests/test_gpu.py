"""GPU and cluster readiness, checked on CPU (CUDA facts mocked): --amp {fp16,bf16}, TF32/fused AdamW/worker
and evaluator defaults of a CUDA run, the mmcv CUDA-ops check, --deterministic, in-place --compile, uint8
batches normalised on the device, the NaN guard without per-step host reads, rank-shared MixSwitch draws,
launcher variables, the mmcv wheel-cache key, and a training step on the meta device for every mixer."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / 'configs/pretrain/deit-s_transmix_8xb128-300e_in1k.py'
pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch believes a CUDA GPU (with or without native bf16) is present; TF32 switches restored after."""
    state = dict(bf16=True)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda including_emulation=True: state['bf16'])
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda *a: 'Fake T4')
    precision, cudnn_tf32 = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    yield state
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = cudnn_tf32


def _cfg(path=RECIPE):
    from mmengine.config import Config
    return Config.fromfile(str(path))


# --- --amp ------------------------------------------------------------------------------------------------

def test_train_help_shows_amp_choices_and_compile():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1', PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), '--help'], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '--amp [{fp16,bf16}]' in out.stdout and '--compile' in out.stdout


def test_amp_on_cpu_is_refused():
    from _tools import load_tool
    with pytest.raises(SystemExit):
        load_tool('train').parse_args([str(RECIPE), '--amp'])


def test_resolve_amp(fake_cuda):
    from mixcore.gpu import resolve_amp
    assert resolve_amp(None) is None
    assert resolve_amp('auto') == 'bf16' and resolve_amp('bf16') == 'bf16' and resolve_amp('fp16') == 'fp16'
    fake_cuda['bf16'] = False  # e.g. a T4: bf16 only emulated
    assert resolve_amp('auto') == 'fp16'
    with pytest.raises(ValueError, match='Fake T4 has no native bfloat16'):
        resolve_amp('bf16')


def test_amp_flag_configures_the_optim_wrapper(fake_cuda):
    from _tools import load_tool
    train = load_tool('train')
    cfg = train.build_cfg(train.parse_args([str(RECIPE), '--amp']))
    assert cfg.optim_wrapper.type == 'mixcore.BF16OptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'
    assert 'loss_scale' not in cfg.optim_wrapper
    cfg = train.build_cfg(train.parse_args([str(RECIPE), '--amp', 'fp16']))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.dtype == 'float16'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    det = str(ROOT / 'configs/mask_rcnn/mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py')
    cfg = train.build_cfg(train.parse_args([det, '--amp']))  # mmcv's RoIAlign has no bf16 kernel
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.dtype == 'float16'
    with pytest.raises(SystemExit, match='RoIAlign, NMS.* no bfloat16; use --amp fp16'):
        train.build_cfg(train.parse_args([det, '--amp', 'bf16']))
    fake_cuda['bf16'] = False
    cfg = train.build_cfg(train.parse_args([str(RECIPE), '--amp']))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'


def test_bf16_wrapper_autocasts_without_a_scaler():
    """bf16 through our wrapper: the forward runs in bfloat16 (CPU autocast here), the step is a plain optimizer
    step (no GradScaler), and an fp16 run's optimizer state (with 'loss_scaler') loads."""
    from mmengine.optim import build_optim_wrapper

    from mixcore.gpu import BF16OptimWrapper
    model = torch.nn.Linear(4, 2)
    wrapper = build_optim_wrapper(model, dict(type='mixcore.BF16OptimWrapper', dtype='bfloat16',
                                              optimizer=dict(type='SGD', lr=0.1)))
    assert isinstance(wrapper, BF16OptimWrapper) and not hasattr(wrapper, 'loss_scaler')
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().square().mean())
    assert not torch.equal(before, model.weight)
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    wrapper.load_state_dict(dict(state, loss_scaler={'scale': 1024.0}))


# --- the defaults of a CUDA run -------------------------------------------------------------------------------

def test_prepare_cuda_run(fake_cuda, monkeypatch):
    from mixcore.gpu import prepare_cuda_run
    cfg = _cfg()
    monkeypatch.setenv('SLURM_CPUS_PER_TASK', '5')  # the old slurm default against 10 workers
    changes = prepare_cuda_run(cfg, launcher='slurm')
    assert torch.get_float32_matmul_precision() == 'high' and torch.backends.cudnn.allow_tf32
    assert cfg.optim_wrapper.optimizer.fused is True
    assert cfg.train_dataloader.num_workers == 5 and cfg.val_dataloader.num_workers == 5
    assert cfg.val_evaluator.collect_device == 'gpu'
    # stage 1: uint8 batches, normalisation and DeiT's random erasing (0.25, pixel, 1) in the preprocessor
    assert cfg.train_dataloader.dataset.pipeline[0].uint8 and cfg.val_dataloader.dataset.pipeline[0].uint8
    pre = cfg.model.data_preprocessor
    assert pre.type == 'ClsDataPreprocessor'
    assert pre.random_erasing == dict(probability=0.25, mode='pixel', max_count=1)
    assert pre.mean == pytest.approx([0.485, 0.456, 0.406]) and pre.std == pytest.approx([0.229, 0.224, 0.225])
    assert any('uint8' in c for c in changes) and any('num_workers = 5' in c for c in changes)


def test_prepare_cuda_run_is_a_noop_without_cuda():
    from mixcore.gpu import prepare_cuda_run
    cfg = _cfg()
    before = cfg.pretty_text
    assert prepare_cuda_run(cfg) == [] and cfg.pretty_text == before


def test_detection_on_cuda_with_cpu_only_mmcv_stops(fake_cuda, monkeypatch, capsys):
    import mixcore.gpu as gpu
    det = _cfg(ROOT / 'configs/mask_rcnn/mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py')
    seg = _cfg(ROOT / 'configs/segmenter/segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py')
    monkeypatch.setattr(gpu, 'mmcv_cuda_ops', lambda: False)
    with pytest.raises(SystemExit, match=r'mask-rcnn\.py: this model runs mmcv ops .* CPU ops only.*MMCV_CUDA=1'):
        gpu.check_mmcv_ops(det, 'mask-rcnn.py')
    gpu.check_mmcv_ops(seg, 'seg.py')  # Segmenter runs no mmcv op
    monkeypatch.setattr(gpu, 'mmcv_cuda_ops', lambda: True)
    gpu.check_mmcv_ops(det, 'mask-rcnn.py')


def test_installed_mmcv_reports_cpu_ops():
    pytest.importorskip('mmcv.ops')
    from mixcore.gpu import mmcv_cuda_ops
    assert mmcv_cuda_ops() is False  # this machine's wheel: CPU ops


# --- determinism, compile ---------------------------------------------------------------------------------------

def test_deterministic_flag_sets_cublas_workspace_and_warn_only(monkeypatch):
    from _tools import load_tool
    from mixcore.gpu import relax_determinism
    train = load_tool('train')
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    train.parse_args([str(RECIPE)])
    assert 'CUBLAS_WORKSPACE_CONFIG' not in os.environ
    train.parse_args([str(RECIPE), '--deterministic'])
    assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'
    try:
        torch.use_deterministic_algorithms(True)  # what mmengine's set_random_seed(deterministic=True) does
        relax_determinism()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def _tiny_classifier(mixer, img_size=32):
    from pretrain.classifier import MixClassifier
    return MixClassifier('vit_tiny_patch16_224', num_classes=10, img_size=img_size, drop_path_rate=0.0, mixer=mixer,
                         model_kwargs=dict(patch_size=8, embed_dim=32, depth=2, num_heads=2))


def test_compile_in_place_keeps_probe_hooks_and_keys():
    from mixcore.gpu import compile_model
    torch.manual_seed(0)
    model = _tiny_classifier(dict(type='TransMix', alpha=1.0))
    keys = list(model.state_dict())
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        ref_logits, ref_attn = model.probe(x)
    assert compile_model(model, backend='eager') == ['model']
    with torch.no_grad():
        logits, attn = model.probe(x)  # the probe's hooks still fire inside the compiled forward
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(attn, ref_attn)
    assert list(model.state_dict()) == keys and not any('_orig_mod' in k for k in keys)
    assert model.model._compiled_call_impl is not None
    model.train()
    loss = model.loss(x, torch.tensor([0, 1, 2, 3]))['loss']
    loss.backward()
    assert torch.isfinite(loss)
    from pretrain.export import backbone_state_dict
    assert not any('_orig_mod' in k for k in backbone_state_dict(model.model))  # what the backbone file holds


# --- uint8 batches ----------------------------------------------------------------------------------------------

def _image(seed=0, size=(80, 64)):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_uint8_batches_normalise_on_the_device_as_in_the_workers():
    """Eval transform: the uint8 path + ClsDataPreprocessor gives bit for bit what the float path gives."""
    from pretrain.classifier import ClsDataPreprocessor
    from pretrain.data import TimmTransform
    kw = dict(input_size=32, is_training=False, interpolation='bicubic', crop_pct=0.875)
    imgs = [_image(i) for i in range(3)]
    floats = torch.stack([TimmTransform(**kw)(dict(img=im))['img'] for im in imgs])
    u8 = torch.stack([TimmTransform(uint8=True, **kw)(dict(img=im))['img'] for im in imgs])
    assert u8.dtype == torch.uint8 and floats.dtype == torch.float32
    pre = ClsDataPreprocessor(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    out = pre(dict(inputs=u8, data_samples=torch.tensor([0, 1, 2])), training=True)['inputs']
    assert torch.equal(out, floats)
    assert torch.equal(pre(dict(inputs=floats, data_samples=None))['inputs'], floats)  # float: only moved
    with pytest.raises(ValueError, match='uint8 images but no mean/std'):
        ClsDataPreprocessor()(dict(inputs=u8, data_samples=None))


def test_random_erasing_on_the_device_in_training_only():
    from pretrain.classifier import ClsDataPreprocessor
    u8 = torch.full((4, 3, 32, 32), 128, dtype=torch.uint8)
    pre = ClsDataPreprocessor(mean=(0.5,) * 3, std=(0.5,) * 3,
                              random_erasing=dict(probability=1.0, mode='pixel', max_count=1))
    clean = u8.float().div(255).sub(0.5).div(0.5)
    torch.manual_seed(0)
    erased = pre(dict(inputs=u8, data_samples=None), training=True)['inputs']
    changed = (erased != clean).flatten(1).any(1)
    assert changed.all()  # every image got a box of noise
    assert torch.equal(pre(dict(inputs=u8, data_samples=None), training=False)['inputs'], clean)


def test_loader_benchmark_measures_uint8_and_float(demo_data):
    from mmengine.config import Config

    from pretrain.loader_benchmark import build_train_dataset, measure
    cfg = Config.fromfile(str(ROOT / 'configs/demo/pretrain_vit-nano_transmix_demo.py'))
    for uint8, dtype in ((False, 'float32'), (True, 'uint8')):
        ds = build_train_dataset(cfg, str(demo_data / 'imagenet'), uint8=uint8)
        r = measure(ds, batch_size=4, workers=0, batches=2, warmup=1)
        assert r['dtype'] == dtype and r['images_per_s'] > 0
        assert r['batch_mb'] == pytest.approx(4 * 3 * 64 * 64 * (1 if uint8 else 4) / 2**20)


# --- NaN guard --------------------------------------------------------------------------------------------------

class _Runner:
    def __init__(self, scaler=False, work_dir=None):
        from types import SimpleNamespace
        self.iter, self.epoch, self.max_iters, self.hooks, self.work_dir = 0, 0, 10**6, [], work_dir
        self.train_loop = SimpleNamespace(val_interval=0)
        self.optim_wrapper = SimpleNamespace(loss_scaler=object() if scaler else None)


def _feed(hook, runner, losses, device='cpu'):
    for v in losses:
        hook.after_train_iter(runner, runner.iter, outputs=dict(
            loss=torch.tensor(v, device=device), loss_cls=torch.tensor(v, device=device)))
        runner.iter += 1


def test_nan_guard_reads_nothing_per_step():
    """Between checks the guard only launches device kernels: on the meta device any host read would raise."""
    from mixcore.hooks import NaNGuardHook
    hook, runner = NaNGuardHook(interval=1000), _Runner()
    hook.before_train(runner)
    _feed(hook, runner, [1.0, float('nan'), 2.0] * 5, device='meta')


def test_nan_guard_fp32_stops_at_the_check_naming_the_first_bad_iteration():
    from mixcore.hooks import NaNGuardHook
    hook, runner = NaNGuardHook(interval=4), _Runner()
    hook.before_train(runner)
    _feed(hook, runner, [1.0, 1.0, 1.0, 1.0, 1.0])  # checked at iteration 4: fine
    with pytest.raises(FloatingPointError, match=r'loss became nan at iteration 6; non-finite terms: loss_cls\. '
                                                 r'Training stopped at iteration 8'):
        _feed(hook, runner, [float('nan'), 1.0, 1.0])


def test_nan_guard_fp16_tolerates_scaler_skips_but_not_divergence():
    from mixcore.hooks import NaNGuardHook
    nan = float('nan')
    hook, runner = NaNGuardHook(interval=5, max_skips=3), _Runner(scaler=True)
    hook.before_train(runner)
    _feed(hook, runner, [1.0, nan, 1.0, float('inf'), nan, nan, 1.0, 1.0, 1.0, 1.0])  # skips: ≤ 3 in a row
    with pytest.raises(FloatingPointError,
                       match=r'nan at iteration 11 \(5 consecutive non-finite losses; the GradScaler tolerates 3\)'):
        _feed(hook, runner, [nan] * 5)


def test_nan_guard_checks_before_a_checkpoint():
    from mmengine.hooks import CheckpointHook

    from mixcore.hooks import NaNGuardHook
    hook, runner = NaNGuardHook(interval=1000), _Runner()
    runner.hooks = [CheckpointHook(interval=3, by_epoch=False)]
    hook.before_train(runner)
    with pytest.raises(FloatingPointError, match='at iteration 2'):
        _feed(hook, runner, [1.0, float('nan'), float('nan')])  # a save is due after iteration 3: checked first


# --- MixSwitch: member shared by all ranks ------------------------------------------------------------------

def test_mix_switch_member_is_shared_by_ranks_while_draws_differ():
    """Two simulated ranks (own global seeds, as diff_rank_seed gives them): with the rank-shared stream seeded
    per iteration both draw the same member every step, while λ and boxes stay per rank; without it they
    disagree on many steps (the old behaviour)."""
    from mixcore.hooks import seed_from
    from pretrain.mix import transmix_recipe
    images, labels = torch.randn(4, 3, 32, 32), torch.arange(4)
    ranks = [transmix_recipe(num_classes=10, patch_size=8) for _ in range(2)]
    members, lams = [[], []], [[], []]
    for it in range(40):
        for r, mixer in enumerate(ranks):
            torch.manual_seed(1000 * r + it)  # per-rank stream (ResumableRandomnessHook with diff_rank_seed)
            mixer.reseed_choice(seed_from(7, 4, it))  # the shared one: (seed without rank, iteration)
            m = mixer.choose()
            members[r].append(type(m).__name__)
            lams[r].append(float(m(images, labels).lam_area[0]))
    assert members[0] == members[1] and len(set(members[0])) == 2
    assert sum(a != b for a, b in zip(lams[0], lams[1])) > 30
    # the same (seed, iteration) draws the same member again: exact resume
    ranks[0].reseed_choice(seed_from(7, 4, 5))
    assert type(ranks[0].choose()).__name__ == members[0][5]
    # without the shared stream each rank draws its own member
    indep = [[], []]
    for it in range(40):
        for r in range(2):
            torch.manual_seed(1000 * r + it)
            indep[r].append(type(transmix_recipe(num_classes=10, patch_size=8).choose()).__name__)
    assert indep[0] != indep[1]


def test_nested_switch_shares_the_stream():
    from pretrain.mix import mixpro_recipe
    m = mixpro_recipe(num_classes=10, patch_size=8)
    m.reseed_choice(3)
    assert m.mixers[1].choice_generator is m.choice_generator  # the DeiT switch inside MixPro


def test_resumable_randomness_hook_seeds_the_shared_stream_alike_on_all_ranks(monkeypatch):
    from types import SimpleNamespace

    import mmengine.dist

    from mixcore.hooks import ResumableRandomnessHook
    seen = {}
    for rank in (0, 1):
        monkeypatch.setattr(mmengine.dist, 'get_rank', lambda r=rank: r)
        model = SimpleNamespace(seed_rank_shared=lambda s, r=rank: seen.setdefault(r, []).append(s))
        runner = SimpleNamespace(seed=42 + rank, iter=0, model=model,
                                 cfg=dict(randomness=dict(seed=42, diff_rank_seed=True)))
        hook = ResumableRandomnessHook()
        for it in range(3):
            runner.iter = it
            hook.before_train_iter(runner, it)
    assert seen[0] == seen[1] and len(set(seen[0])) == 3


# --- launchers, install -----------------------------------------------------------------------------------------

def test_mpi_local_rank_and_slurm_port(monkeypatch):
    from mixcore.gpu import master_port, set_launcher_env
    for var in ('LOCAL_RANK', 'MASTER_PORT', 'SLURM_JOB_ID'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('OMPI_COMM_WORLD_LOCAL_RANK', '3')
    set_launcher_env('mpi', 0)
    assert os.environ['LOCAL_RANK'] == '3' and os.environ['MASTER_PORT'] == '29500'
    monkeypatch.delenv('MASTER_PORT')
    monkeypatch.setenv('SLURM_JOB_ID', '123456')
    assert master_port() == 23456
    set_launcher_env('slurm', 0)
    assert os.environ['MASTER_PORT'] == '23456'


@pytest.mark.parametrize('job, port', [('123456', '23456'), (None, '29500')])
def test_dist_train_port_from_slurm_job(job, port, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ('PORT', 'SLURM_JOB_ID')}
    env['PYTHON'] = 'echo'
    if job:
        env['SLURM_JOB_ID'] = job
    out = subprocess.run(['bash', str(ROOT / 'tools/dist_train.sh'), 'cfg.py', '1'], env=env, capture_output=True,
                         text=True, timeout=30)
    assert f'--master_port={port}' in out.stdout, out


def _print_key(tmp_path, path, **env):
    venv = Path(sys.executable).parent.parent
    e = dict(os.environ, VENV=str(venv), PATH=path, MIXSEG_WHEEL_CACHE=str(tmp_path / 'wheels'), **env)
    for var in ('CUDA_HOME', 'MMCV_CUDA', 'TORCH_CUDA_ARCH_LIST'):
        if var not in env:
            e.pop(var, None)
    r = subprocess.run(['bash', str(ROOT / 'tools/install.sh'), '--print-key'], env=e, capture_output=True,
                       text=True, timeout=120)
    return r.returncode, dict(line.split('=', 1) for line in r.stdout.split()), r.stderr


def test_install_keys_the_mmcv_cache_on_cuda(tmp_path):
    """The cache key of tools/install.sh (dry run): CPU ops without nvcc or without a GPU, CUDA ops keyed by
    torch.version.cuda with nvcc and a GPU; an explicit arch list gets its own key; the CPU wheel of the old key (torch version only) is
    reused."""
    cuda = torch.version.cuda
    rc, key, err = _print_key(tmp_path, '/usr/bin:/bin')
    assert rc == 0, err
    assert key['flavour'] == 'cpu' and key['cache'].endswith('/torch-2.14.1-cpu') and key['wheel'] == ''
    if cuda:
        fake = tmp_path / 'bin'
        fake.mkdir()
        (fake / 'nvcc').write_text('#!/bin/sh\necho fake nvcc\n')
        (fake / 'nvcc').chmod(0o755)
        # the CUDA toolkit without a GPU (CI's machine): CPU ops, the cached CPU wheel is used
        rc, key, err = _print_key(tmp_path, f'{fake}:/usr/bin:/bin')
        assert rc == 0 and key['flavour'] == 'cpu', (key, err)
        (fake / 'nvidia-smi').write_text('#!/bin/sh\necho "GPU 0: Fake GPU (UUID: GPU-0)"\n')
        (fake / 'nvidia-smi').chmod(0o755)
        rc, key, err = _print_key(tmp_path, f'{fake}:/usr/bin:/bin')
        assert key['flavour'] == 'cuda' and key['cache'].endswith(f'/torch-2.14.1-cu{cuda.replace(".", "")}')
        assert key['arch_list'].startswith('7.5;8.0') and key['arch_list'].endswith('+PTX')
        rc, key, err = _print_key(tmp_path, f'{fake}:/usr/bin:/bin', TORCH_CUDA_ARCH_LIST='9.0')
        assert key['cache'].endswith('-sm90') and key['arch_list'] == '9.0'
        rc, key, err = _print_key(tmp_path, f'{fake}:/usr/bin:/bin', MMCV_CUDA='0')
        assert key['flavour'] == 'cpu'
    rc, key, err = _print_key(tmp_path, '/usr/bin:/bin', MMCV_CUDA='1')
    assert rc != 0 and 'MMCV_CUDA=1' in err
    legacy = tmp_path / 'wheels/torch-2.14.1'
    legacy.mkdir(parents=True)
    pytag = f'cp{sys.version_info[0]}{sys.version_info[1]}'
    (legacy / f'mmcv-2.1.0-{pytag}-{pytag}-linux_x86_64.whl').write_bytes(b'')
    rc, key, err = _print_key(tmp_path, '/usr/bin:/bin')
    assert key['wheel'] == str(legacy / f'mmcv-2.1.0-{pytag}-{pytag}-linux_x86_64.whl')


# --- a training step on the meta device ---------------------------------------------------------------------

MIXERS = [
    None, dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0), dict(type='TransMix', alpha=1.0),
    dict(type='MaskMix', pal=True), dict(type='TokenMix', source='attention'), dict(type='TokenMix'),
    dict(type='deit_mix'), dict(type='transmix_recipe'), dict(type='mixpro_recipe'), dict(type='tokenmix_recipe'),
]  # TokenMix without a source: teacher label maps (the default), cropped with torchvision's roi_align


@pytest.mark.parametrize('mixer', MIXERS, ids=lambda m: m['type'] if m else 'none')
def test_training_step_on_meta_reads_nothing_back(mixer):
    """uint8 batch → device normalisation + erasing → mixing → forward (+ class attention) → targets →
    loss → backward → NaN-guard bookkeeping, all on the meta device: any device→host read would raise."""
    from mixcore.hooks import NaNGuardHook
    torch.manual_seed(0)
    with torch.device('meta'):
        model = _tiny_classifier(mixer, img_size=64)  # 8×8 tokens: room for TokenMix's 14-token blocks
    model.data_preprocessor = type(model.data_preprocessor)(
        num_classes=10, mean=(0.5,) * 3, std=(0.5,) * 3,
        random_erasing=dict(probability=1.0, mode='pixel', max_count=1)).to(torch.device('meta'))
    if hasattr(model.mixer, 'reseed_choice'):
        model.seed_rank_shared(1)
    data = model.data_preprocessor(dict(inputs=torch.zeros(4, 3, 64, 64, dtype=torch.uint8, device='meta'),
                                        data_samples=torch.zeros(4, dtype=torch.long, device='meta')), True)
    assert data['inputs'].device.type == 'meta' and data['inputs'].dtype == torch.float32
    # crop-aligned teacher label maps (B×2×k×H×W top-k scores + indices, crop boxes, flips), as the loader gives them
    label_maps = dict(maps=torch.zeros(4, 2, 5, 12, 12, device='meta'), boxes=torch.zeros(4, 4, device='meta'),
                      flip=torch.zeros(4, dtype=torch.bool, device='meta'))
    for _ in range(3):  # several draws of the switch
        losses = model.loss(data['inputs'], data['data_samples'], label_maps=label_maps)
        losses['loss'].backward()
        hook, runner = NaNGuardHook(interval=1000), _Runner()
        hook.before_train(runner)
        hook.after_train_iter(runner, 0, outputs=losses)


# --- the smoke script -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_gpu_smoke_cpu_mode(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    r = subprocess.run(['bash', str(ROOT / 'tools/gpu_smoke.sh'), '--device', 'cpu', '--work-dir', str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=1500)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert 'all steps passed' in out
    for step in ('stack', 'data', 'benchmark_mix', 'pretrain', 'pretrain_resume', 'resumed_from_epoch_1',
                 'backbone_file', 'segmenter_train', 'segmenter_test', 'mask_rcnn'):
        assert any(line.startswith(f'| {step} ') and '| PASS ' in line for line in out.splitlines()), step
    assert (tmp_path / 'runs/seg/results/ss.json').is_file()

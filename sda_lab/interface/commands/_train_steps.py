"""The ``train`` command's steps after the VAE: the learned inverse mel's fit, kept only where it
beats its start by :data:`INVERSE_MARGIN` (:func:`train_inverse_mel`), its fine-tuning on the
model's decoded mels, kept only where that beats it on them by the same margin
(:func:`train_decoded_inverse`), and hearing the run inside a time share (:func:`hear`)."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

from . import _options as opt

PICK_FRACTION = 0.2  # of the training files: the part that picks the inverse mel's weights
INVERSE_MARGIN = 0.01  # the fit is kept when its pick-set loss is this share below its start's
HEAR_MAX_FILES = 24  # held-out files heard at most
PICK_HEARD_CLIPS = 16  # pick clips heard to keep or drop the fine-tuning, spread over the set
DECODING_SHARE = 0.5  # of the fine-tuning's time: the most that refining and decoding may take


def _fit_pick(clips, train_idx: list[int], seed: int, groups: Mapping[str, str] | None
              ) -> tuple[list[int], list[int], list[str]]:
    """The training clips that fit the inverse mels and those that pick their weights (whole
    recordings, :data:`PICK_FRACTION` of them: files that are one recording up to gain,
    ``groups``, are on one side), and the pick files' names.

    Raises
    ------
    ValueError
        From :func:`sda_lab.data.split.split_by_file` (fewer than 2 recordings, or none that
        can pick and leave 2 clips to fit)."""
    from ...data.split import split_by_file

    files = [clips.files[i] for i in train_idx]
    fit, pick, pick_files = split_by_file(files, PICK_FRACTION, seed, groups=groups)
    return [train_idx[i] for i in fit], [train_idx[i] for i in pick], pick_files


def collapsed(result) -> bool:
    """Whether the trained model uses no latent unit (its last evaluation's active units)."""
    units = result.history.active_units
    return bool(units) and units[-1] == 0


def heard_model(result, out: Path):
    """``result`` with the model the run is heard through: ``best.pt``'s where there is one."""
    from ...training.checkpoint import load_checkpoint

    if out.joinpath("best.pt").is_file():
        return replace(result, model=load_checkpoint(out / "best.pt", device="cpu").model.eval())
    return result


def _keep_start(inv) -> None:
    """Make ``inv`` its start: the residual's last layer zero (the untrained state), marked
    ``history["kept"] = "start"`` (:meth:`~sda_lab.representation.inverter.Inverter.for_run`
    hears such a file as its start)."""
    import torch

    with torch.no_grad():
        inv.net.out.weight.zero_()
        inv.net.out.bias.zero_()
    inv.history["kept"] = "start"


def train_inverse_mel(args: argparse.Namespace, spec, clips, train_idx: list[int], out: Path,
                      seed: int, max_seconds: float,
                      groups: Mapping[str, str] | None = None) -> dict:
    """Fit, pick and save the learned inverse mel on the training clips ``train_idx``, for at
    most ``max_seconds`` of wall time (start choice and pairs included).

    The pick files are whole recordings (``groups``: :func:`sda_lab.data.split.same_recordings`;
    None takes every file as its own), so no pick file has a copy among the fit files; a split
    that cannot be made (fewer than 2 recordings) is a note, as a failed fit is.

    The fit is kept when its pick-set loss
    (:func:`sda_lab.representation.inverse_mel_fit.magnitude_loss` on held-back training files)
    is at least :data:`INVERSE_MARGIN` of the start's below the start's; else the start is kept
    (the file is the start, marked so). Both ways ``inverse_mel.pt`` is written and one line
    says which.

    Returns its ``metrics.json`` entry: ``trained`` (a file was written), ``kept``
    (``"learned"`` or ``"start"``), ``margin``, and either ``note`` (why there is no file) or
    the fit/pick clip counts, pick files, steps, seconds, ``best_step``, the pick-set losses of
    the fit and the start, the start chosen and each start's pick-set spectral convergence. A
    ``KeyboardInterrupt`` is re-raised with its entry as the exception's ``inverse_mel``.
    """
    from ...representation import inverse_mel as IM
    from ...representation import inverse_mel_fit as IMF

    try:
        fit_idx, pick_idx, pick_files = _fit_pick(clips, train_idx, seed, groups)
        config = IM.InverseMelConfig(max_seconds=max_seconds, seed=seed)
        print(f"learned inverse mel: fitting on {opt.count(len(fit_idx), 'clip')}, picking on "
              f"{opt.count(len(pick_idx), 'clip')} of {opt.count(len(pick_files), 'file')}, "
              f"for at most {max_seconds:.0f} s")
        inv = IMF.fit_inverse_mel(spec, clips.waveforms[fit_idx], config,
                                 progress=not args.quiet,
                                 val_waveforms=clips.waveforms[pick_idx])
    except KeyboardInterrupt as exc:
        exc.inverse_mel = {"trained": False, "note": "interrupted while fitting the learned "
                                                     "inverse mel; the run uses NNLS"}
        raise
    except (ValueError, TypeError, RuntimeError) as exc:  # the VAE's run is kept either way
        note = f"the learned inverse mel failed ({str(exc).splitlines()[0]}); the run uses NNLS"
        print(note)
        return {"trained": False, "note": note}
    h = inv.history
    losses = dict(h["val_loss"])  # step -> pick-set loss; step 0 is the start
    fitted, start_loss = losses[h["best_step"]], losses[0]
    learned = fitted <= (1.0 - INVERSE_MARGIN) * start_loss
    if not learned:
        _keep_start(inv)
    IM.save_inverse_mel(out / IM.INVERSE_MEL_FILE, inv)
    entry = {"trained": True, "file": IM.INVERSE_MEL_FILE, "kept": "learned" if learned
             else "start", "margin": INVERSE_MARGIN, "fit_clips": len(fit_idx),
             "pick_clips": len(pick_idx), "pick_files": pick_files, "steps": h["steps"],
             "seconds": h["seconds"], "best_step": h["best_step"], "start": inv.start,
             "start_sc": h.get("start_sc") or {}, "pick_loss": fitted,
             "pick_start_loss": start_loss, "config": asdict(inv.config)}
    chosen = ", ".join(f"{k} {v:.3f}" for k, v in entry["start_sc"].items())
    if chosen:
        print(f"learned inverse mel: start {inv.start} (spectral convergence of each start's "
              f"audio on the pick set: {chosen})")
    if learned:
        print(f"learned inverse mel: kept the fit: pick-set magnitude loss (spectral "
              f"convergence + log-magnitude L1) {fitted:.4g} against its "
              f"start's {start_loss:.4g} ({1 - fitted / start_loss:.1%} lower, step "
              f"{h['best_step']} of {h['steps']})")
    elif h["best_step"] == 0:
        print(f"learned inverse mel: kept its {inv.start} start: no step of the fit came below "
              f"the start's pick-set magnitude loss, {start_loss:.4g} ({h['steps']} steps; the "
              "fit's own loss, printed as it went, is on the fit clips)")
    else:
        print(f"learned inverse mel: kept its {inv.start} start: the fit's best pick-set "
              f"magnitude loss, {fitted:.4g} at step {h['best_step']}, is not "
              f"{INVERSE_MARGIN:.0%} below the start's {start_loss:.4g} ({h['steps']} steps)")
    return entry


def train_decoded_inverse(args: argparse.Namespace, result, out: Path, seed: int,
                          max_seconds: float, groups: Mapping[str, str] | None = None) -> dict:
    """Fine-tune the run's ``inverse_mel.pt`` for at most ``max_seconds`` on the heard model's
    (:func:`heard_model`) decoded mels of the training clips as the run hears a clip (each
    posterior mean refined by the run's ``posterior_steps``,
    :func:`~sda_lab.training.posterior.heard_reconstruction`: the decodes the inverse will be
    given), against their clips' spectra
    (:func:`sda_lab.representation.inverse_mel_fit.fit_inverse_mel` with ``mels`` and
    ``init``), on the fit/pick split of :func:`train_inverse_mel`.

    Kept, as ``decoded_inverse_mel.pt``, where what it makes of the pick clips' decoded mels is
    heard closer to those clips than what the inverse makes of them: their mean spectral
    convergence (the run's full inversion, PGHI and fast Griffin-Lim, as the verdict hears; at
    most :data:`PICK_HEARD_CLIPS` of them) at least :data:`INVERSE_MARGIN` of the inverse's below
    it (the weights themselves are picked by the fit's pick-set loss). Decoding the clips and
    hearing them twice are inside ``max_seconds``: the pick clips are decoded first and timed,
    then as many fit clips (spread over them) as keep the decoding within
    :data:`DECODING_SHARE` of ``max_seconds`` (none fitted, with a note, where that leaves
    fewer than 2); the fit gets what is left after the decoding and twice the first hearing.
    Else no such file is written and the model is heard through ``inverse_mel.pt``. One line
    says which. Returns its ``metrics.json`` entry: ``kept`` (bool), ``file``, ``margin``,
    steps, seconds, ``best_step``, the fit clips decoded (``fit_clips``, of
    ``training_fit_clips``), the pick-set losses and spectral convergences of the fine-tuned
    and of the inverse it started from, or ``note`` where nothing was fitted. A
    ``KeyboardInterrupt`` is re-raised with its entry as the exception's ``decoded``.
    """
    import torch

    from ...representation import inverse_mel as IM
    from ...representation import inverse_mel_fit as IMF
    from ...training.posterior import heard_reconstruction

    path = out / IM.DECODED_INVERSE_MEL_FILE
    base = IM.load_inverse_mel(out / IM.INVERSE_MEL_FILE)
    fit_idx, pick_idx, _ = _fit_pick(result.clips, list(result.train_idx), seed, groups)
    n_training_fit = len(fit_idx)
    model = heard_model(result, out).model
    t0 = time.perf_counter()

    def decode(idx: list[int]) -> torch.Tensor:
        return heard_reconstruction(model, result.mels[idx], result.train_config,
                                    result.spectrogram.mel_magnitude)  # (n, 1, n_mels, T)

    pick_decoded = decode(pick_idx)
    per_clip = (time.perf_counter() - t0) / len(pick_idx)
    room = DECODING_SHARE * max_seconds - (time.perf_counter() - t0)
    n_fit = min(len(fit_idx), max(0, math.floor(room / max(per_clip, 1e-6))))
    if n_fit < 2:
        note = (f"not fine-tuned on the model's decoded mels: refining and decoding a clip took "
                f"{per_clip:.2f} s, so {DECODING_SHARE:.0%} of its {max_seconds:.0f} s share holds "
                f"{n_fit} of the {len(fit_idx)} fit clips (2 needed); the model is heard through "
                "inverse_mel.pt")
        print(f"learned inverse mel: {note}")
        return {"kept": False, "note": note}
    fit_idx = [fit_idx[int(i)] for i in torch.linspace(0, len(fit_idx) - 1, n_fit).long()]
    decoded = torch.cat([decode(fit_idx), pick_decoded])  # (n_fit + n_pick, 1, n_mels, T)
    decoding_s = time.perf_counter() - t0
    of = "" if n_fit == n_training_fit else f" (of {n_training_fit}: what its share holds)"
    print(f"learned inverse mel: fine-tuning it on the model's decoded mels of {n_fit} "
          f"clips{of}, picking on {len(pick_idx)}, for at most {max_seconds:.0f} s")
    waves = result.clips.waveforms
    heard = [int(i) for i in torch.linspace(0, len(pick_idx) - 1,
                                            min(PICK_HEARD_CLIPS, len(pick_idx))).long()]
    heard_mels, heard_waves = decoded[len(fit_idx):][heard], waves[pick_idx][heard]
    t0 = time.perf_counter()
    sc_before = _heard_sc(result.spectrogram, base, heard_mels, heard_waves)
    fit_s = max(1.0, max_seconds - decoding_s
                - 2 * (time.perf_counter() - t0))  # the second hearing too
    try:
        inv = IMF.fit_inverse_mel(result.spectrogram, waves[fit_idx],
                                 IM.InverseMelConfig(max_seconds=fit_s, seed=seed),
                                 progress=not args.quiet, val_waveforms=waves[pick_idx],
                                 mels=decoded[:len(fit_idx)], val_mels=decoded[len(fit_idx):],
                                 init=base)
    except KeyboardInterrupt as exc:
        exc.decoded = {"kept": False, "note": "interrupted while fine-tuning on the decoded "
                                              "mels; the model is heard through inverse_mel.pt"}
        raise
    except (ValueError, TypeError, RuntimeError) as exc:
        note = (f"the fine-tuning on decoded mels failed ({str(exc).splitlines()[0]}); the model "
                "is heard through inverse_mel.pt")
        print(note)
        return {"kept": False, "note": note}
    h = inv.history
    losses = dict(h["val_loss"])  # step -> pick-set loss on decoded mels; step 0: the inverse
    sc = _heard_sc(result.spectrogram, inv, heard_mels, heard_waves)
    kept = sc <= (1.0 - INVERSE_MARGIN) * sc_before
    entry = {"kept": kept, "file": IM.DECODED_INVERSE_MEL_FILE if kept else None,
             "margin": INVERSE_MARGIN, "steps": h["steps"], "seconds": h["seconds"],
             "best_step": h["best_step"], "fit_clips": n_fit,
             "training_fit_clips": n_training_fit, "pick_loss": losses[h["best_step"]],
             "pick_before_loss": losses[0], "pick_sc": sc, "pick_before_sc": sc_before}
    said = (f"{len(heard)} pick clips' decoded mels heard at spectral convergence {sc:.3f} "
            f"against {sc_before:.3f} through inverse_mel.pt")
    if kept:
        from ...representation.inverter import checkpoint_sha256

        inv.history.update(kept="decoded", checkpoint_sha256=checkpoint_sha256(out))
        IM.save_inverse_mel(path, inv)
        print(f"learned inverse mel: kept the fine-tuning for what the model makes: {said} "
              f"({1 - sc / sc_before:.1%} lower; step {h['best_step']} of {h['steps']})")
    else:
        print(f"learned inverse mel: the fine-tuning on decoded mels is not kept: {said}, not "
              f"{INVERSE_MARGIN:.0%} lower; the model is heard through inverse_mel.pt")
    return entry


def _heard_sc(spec, inverse, mels, waveforms) -> float:
    """Mean spectral convergence of ``mels`` ``(n, 1, n_mels, T)`` heard through ``inverse``
    (PGHI and fast Griffin-Lim) against ``waveforms`` ``(n, 1, samples)``."""
    from ...representation.inverter import Inverter
    from ...representation.metrics import spectral_convergence

    c = spec.config
    y = Inverter(spec, inverse)(mels, waveforms.shape[-1]).cpu()  # (n, 1, samples)
    return float(spectral_convergence(waveforms, y, c.n_fft, c.hop_length).mean())


def clips_to_hear(files: list[str], indices: list[int]) -> int:
    """How many of the clips ``indices`` :func:`hear` may score (the budget's hearing share is
    sized to them)."""
    from ...training.audio_eval import chosen_clips

    return sum(len(ids) for _, ids in chosen_clips(files, indices, HEAR_MAX_FILES))


def hear(result, out: Path, quiet: bool, max_seconds: float | None = None):
    """The run's audio figures and verdict (:mod:`sda_lab.training.audio_eval`) on its held-out
    files, heard as ``listen`` hears them: the model in ``best.pt`` (else the last), the run's
    own inversion. With ``max_seconds``, one file is heard first and timed, then as many more
    (of at most :data:`HEAR_MAX_FILES`) as fit in what is left; at least one file is always
    heard. Returns ``(summary, verdict)``."""
    import pandas as pd

    from ...representation.inverter import Inverter

    t0 = time.perf_counter()
    result = heard_model(result, out)
    inverter = Inverter.for_run(out, result.spectrogram)  # what the model makes
    round_trip = Inverter.for_run(out, result.spectrogram, mels="analysed")
    if max_seconds is None:
        evaluation = result.evaluate_audio(inverter, max_files=HEAR_MAX_FILES,
                                           progress=not quiet, round_trip_inverter=round_trip)
        return evaluation.summary(), result.audio_verdict(evaluation)
    from ...training.audio_eval import evaluate_audio

    indices = result.val_idx or result.train_idx
    on = "validation" if result.val_idx else "training"

    def score(idx: list[int], n: int, progress: bool):
        return evaluate_audio(result.model, result.spectrogram, result.clips.waveforms,
                              result.clips.files, idx, result.train_mels, inverter, on=on,
                              max_files=n, progress=progress, round_trip_inverter=round_trip,
                              train_config=result.train_config)

    evaluation = score(indices, 1, False)
    per_file = time.perf_counter() - t0
    more = min(HEAR_MAX_FILES - 1, math.floor((max_seconds - per_file) / max(per_file, 1e-3)))
    heard = set(evaluation.files["file"])
    rest = [i for i in indices if result.clips.files[i] not in heard]
    if more > 0 and rest:
        extra = score(rest, more, not quiet)
        evaluation = replace(evaluation, files=pd.concat([evaluation.files, extra.files],
                                                         ignore_index=True),
                             seconds=evaluation.seconds + extra.seconds)
    return evaluation.summary(), result.audio_verdict(evaluation)


def inverse_entry_for(args, result, out, seed, plan, interrupted, kept_inverse, earlier,
                      n_recordings: int, groups: Mapping[str, str] | None = None):
    """The run's inverse-mel entry, fitting where wanted: the inverse of the training clips'
    mels (:func:`train_inverse_mel`; kept as it was on ``--resume``, as it depends on the
    training files only), then its fine-tuning on the model's decoded mels
    (:func:`train_decoded_inverse`, entry ``"decoded"``), in the budget's inverse part
    (its ``fine_tune_s`` for the second, the rest for the first; without a budget,
    ``--inverse-mel-minutes`` for the first and half that for the second). A
    ``decoded_inverse_mel.pt`` already there (before ``--resume``) is removed first: it was
    fitted to the model before this training. ``n_recordings``: the training files' different
    recordings (:func:`sda_lab.data.split.count_recordings` of ``groups``); under 2 nothing is
    fitted (one must fit, another pick the weights). An interrupt while fitting is returned (with its
    entry as ``.inverse_mel``) for the command to finish the run."""
    from ...training.budget import MIN_INVERSE_S

    had_decoded = out.decoded_inverse_mel.is_file()
    out.decoded_inverse_mel.unlink(missing_ok=True)

    if args.no_inverse_mel:
        return {"trained": False, "note": "--no-inverse-mel"}
    if n_recordings < 2:
        note = (f"skipped the learned inverse mel: {n_recordings} training recording (a file, "
                "or files that are one recording up to gain), it needs at least 2 different "
                "ones (one to fit, one to pick its weights); the run uses NNLS")
        print(note)
        return {"trained": False, "note": note}
    if interrupted is not None and not kept_inverse:
        return {"trained": False, "note": "training was interrupted before the learned inverse "
                                          "mel was fitted; the run uses NNLS"}
    if plan is not None and not plan.inverse_s and not kept_inverse:
        note = (f"skipped the learned inverse mel: its share of --max-minutes, "
                f"{plan.inverse_skipped:.1f} s, is too short to fit one; the run uses NNLS")
        print(note)
        return {"trained": False, "note": note}
    if plan is None:
        first, second = 60.0 * args.inverse_mel_minutes, 30.0 * args.inverse_mel_minutes
    elif plan.fine_tune_only:  # the budget kept no share for the first fit
        first, second = 0.0, plan.inverse_s or plan.inverse_skipped
    else:
        first = plan.inverse_s - plan.fine_tune_s
        second = plan.fine_tune_s or plan.fine_tune_skipped
    if kept_inverse:
        entry = dict((earlier or {}).get("inverse_mel") or {"trained": True})
        entry.pop("decoded", None)  # its file was fitted to the model before --resume: removed
        entry["note"] = "kept from before --resume (it depends on the training files only)"
    else:
        try:
            entry = train_inverse_mel(args, result.spectrogram, result.clips,
                                      list(result.train_idx), out.path, seed, first, groups)
        except KeyboardInterrupt as exc:
            return exc
    if not entry.get("trained") or interrupted is not None:
        return entry
    skip = None
    if second < MIN_INVERSE_S:
        skip = f"its share, {second:.1f} s, is under the {MIN_INVERSE_S:.0f} s a fit needs"
    elif collapsed(result):
        skip = ("the model uses no latent unit (collapsed): its decoded mels are one sound, and "
                "an inverse fitted to them would only learn the average spectrum")
    if skip is not None:
        if had_decoded:
            skip += ("; the earlier fine-tuning, fitted to the model before --resume, is "
                     "removed")
        print(f"learned inverse mel: not fine-tuned on the model's decoded mels: {skip}")
        entry["decoded"] = {"kept": False, "note": skip}
        return entry
    try:
        entry["decoded"] = train_decoded_inverse(args, result, out.path, seed, second,
                                                 groups)
    except KeyboardInterrupt as exc:
        entry["decoded"] = getattr(exc, "decoded", {"kept": False})
        exc.inverse_mel = entry
        return exc
    return entry

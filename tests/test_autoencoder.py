import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

import starlearn as sl
from starlearn import synth
from starlearn.estimators import Autoencoder
from starlearn.evaluate.autoencoder import add_noise, denoising_gain, evaluate_autoencoder
from starlearn.models import ConvAutoencoder

FAST = {"dense-ae": {"hidden": [256, 128, 64]},
        "conv-ae": {"channels": [8, 16], "dilations": [4]}}  # one dilated block: fast


@pytest.fixture(scope="module")
def clean():
    spectra = synth.generate("pfs-mr", 420, seed=3, snr=None)
    return spectra[:360], spectra[360:]


@pytest.fixture(scope="module", params=["dense-ae", "conv-ae"])
def denoiser(request, clean):
    train, _ = clean
    ae = Autoencoder(request.param, 16, denoise=True, snr=(8, 40), epochs=25,
                     model_config=FAST[request.param], progress=False, seed=0)
    return ae.fit(train)


@pytest.mark.parametrize("model", ["dense-ae", "conv-ae"])
def test_reconstructs_far_better_than_the_mean_spectrum(model, clean):
    train, test = clean
    ae = Autoencoder(model, 16, epochs=25, batch_size=16, model_config=FAST[model],
                     progress=False).fit(train)
    result = evaluate_autoencoder(ae, test)
    assert result["reconstruction_rms"] < 0.5 * result["mean_spectrum_rms"]
    assert "denoising" not in result


def test_denoising_lowers_the_error_below_the_input_noise(denoiser, clean):
    _, test = clean
    noisy = add_noise(test, 10.0, seed=1)
    denoised = denoiser.denoise(noisy)
    assert denoising_gain(test, noisy, denoised) > 1.5
    assert np.all(denoised.ivar[~denoised.mask] > 0)  # honest per-pixel errors


def test_save_load_is_exact(denoiser, clean, tmp_path):
    _, test = clean
    denoiser.save(tmp_path / "ae")
    again = sl.load(tmp_path / "ae")
    assert_array_equal(again.reconstruct(test).flux, denoiser.reconstruct(test).flux)
    assert_array_equal(again.encode(test), denoiser.encode(test))
    before, after = denoiser.score(test), again.score(test)
    assert_allclose(np.asarray(after["density"]), np.asarray(before["density"]), rtol=1e-6)
    assert_array_equal(np.asarray(after["odd"]), np.asarray(before["odd"]))


def test_odd_spectra_rank_above_normal_ones(denoiser, clean):
    """For dense-ae, whose single latent vector describes the whole spectrum (conv-ae, a
    local model with a large latent map, reproduces local oddities such as a wrong-sign
    line and is not meant for this)."""
    if denoiser.model != "dense-ae":
        pytest.skip("odd-spectrum detection is a dense-ae feature")
    _, test = clean
    noisy = add_noise(test, 30.0, seed=2)
    flux = noisy.flux.copy()
    # a wrong-sign line: the strongest absorption line of spectrum 0 turned into emission
    depth = 1 - flux[0]
    centre = int(np.argmax(np.where(noisy.mask[0], 0, depth)))
    flux[0, centre - 6:centre + 7] = 2 - flux[0, centre - 6:centre + 7]
    # a spliced pair: the blue half of a cool star joined to the red half of a hot one
    order = np.argsort(noisy.label("teff"))
    half = noisy.n_pix // 2
    flux[1, :half], flux[1, half:] = flux[order[0], :half], flux[order[-1], half:]
    table = denoiser.score(noisy.replace(flux=flux))
    # the wrong-sign line is a local misfit: highest reconstruction chi-square
    chi2_rank = np.argsort(np.argsort(-np.asarray(table["chi2"])))
    assert chi2_rank[0] < 3
    # the splice is locally plausible: it stands out in the combined oddness (top 10%)
    odd_rank = np.argsort(np.argsort(-np.asarray(table["oddness"])))
    assert odd_rank[0] < 6 and odd_rank[1] < 6
    assert table["odd"][0] and table["odd"][1]
    assert np.mean(table["odd"][2:]) < 0.2


def test_conv_autoencoder_is_translation_equivariant():
    torch.manual_seed(0)
    # default dilations: an output pixel depends on ~1,550 input pixels, so compare away
    # from the zero padding at the ends
    net = ConvAutoencoder(4096, latent=4, channels=(8, 8)).eval()
    x = torch.zeros(1, 1, 4096)
    x[0, 0, 2000:2010] = -1.0
    x[0, 0, 2300:2304] = 0.5
    with torch.no_grad():
        base, _ = net(x)
        for shift in (4, 8, -12):
            shifted, _ = net(torch.roll(x, shift, dims=-1))
            assert_allclose(shifted[0, 800:-800].numpy(),
                            torch.roll(base, shift, -1)[0, 800:-800].numpy(), atol=1e-5)


def test_conv_ae_reconstruction_follows_a_shift(clean):
    train, test = clean
    ae = Autoencoder("conv-ae", 8, epochs=15, model_config=FAST["conv-ae"],
                     progress=False).fit(train)
    spectra = test[:3]
    shifted = spectra.replace(flux=np.roll(spectra.flux, 4, axis=1))
    a = ae.reconstruct(spectra).flux
    b = ae.reconstruct(shifted).flux
    inner = slice(50, -50)
    assert_allclose(b[:, inner], np.roll(a, 4, axis=1)[:, inner], atol=2e-3)


def test_noise2self_on_noisy_spectra_only(clean):
    train, test = clean
    noisy_train = add_noise(train, 15.0, seed=5)
    ae = Autoencoder("dense-ae", 16, denoise=True, epochs=25, model_config=FAST["dense-ae"],
                     progress=False).fit(noisy_train)
    noisy = add_noise(test, 15.0, seed=6)
    assert denoising_gain(test, noisy, ae.denoise(noisy)) > 1.5


def test_contract_and_errors(clean):
    train, _ = clean
    ae = Autoencoder(denoise=True, snr=(5, 50))
    twin = clone(ae)
    assert twin.get_params() == ae.get_params() and bool(twin.denoise)
    with pytest.raises(ValueError, match="model must be one of"):
        Autoencoder("pca").fit(train)
    with pytest.raises(ValueError, match="set denoise=True"):
        Autoencoder(snr=10.0).fit(train)
    plain = Autoencoder("dense-ae", 4, epochs=1, model_config=FAST["dense-ae"],
                        progress=False).fit(train)
    with pytest.raises(ValueError, match="not trained to denoise"):
        plain.denoise(train)
    assert plain.encode(train[:5]).shape == (5, 4)
    assert plain.decode(plain.encode(train[:5])).shape == (5, train.n_pix)


@pytest.mark.parametrize("model", ["dense-ae", "conv-ae"])
def test_the_onnx_export_runs_alone_and_matches_torch(model, clean, tmp_path):
    """model.onnx of an autoencoder: scaled input -> (reconstruction, latent), any batch
    size, equal to encode/reconstruct."""
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    train, test = clean
    ae = Autoencoder(model, 4, epochs=2, model_config=FAST[model], progress=False).fit(train)
    ae.save(tmp_path / "ae")
    out = ae.export_onnx(tmp_path / "ae")
    session = ort.InferenceSession(str(out["onnx"]))
    recon, latent = session.run(None, {"x": ae.network_input(test[:7])})
    flux = recon.reshape(7, -1) * ae.flux_scaler_.scale + ae.flux_scaler_.mean
    assert_allclose(flux, ae.reconstruct(test[:7]).flux, atol=1e-4)
    assert_allclose(latent.reshape(7, -1), ae.encode(test[:7]).reshape(7, -1), atol=1e-5)

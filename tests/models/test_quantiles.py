"""Quantile levels, the pinball loss (hand-computed values), interval names, the rearrangement and the
conformal calibration."""

import numpy as np
import pytest
import torch

from seqlab.models.quantiles import (calibrated, central_intervals, check_calibration, check_quantiles,
                                     conformal_offsets, median_index, pinball_loss, quantile_errors, rearrange,
                                     rolling_calibrated)


def test_pinball_loss_matches_a_hand_computed_example():
    truth = torch.tensor([1.0, 3.0])
    prediction = torch.tensor([[0.0, 2.0],   # y = 1: errors y - ŷ = 1, -1
                               [3.5, 2.5]])  # y = 3: errors -0.5, 0.5
    # τ = 0.1: max(0.1·1, -0.9·1) = 0.1; max(0.1·-0.5, -0.9·-0.5) = 0.45
    # τ = 0.9: max(0.9·-1, -0.1·-1) = 0.1; max(0.9·0.5, -0.1·0.5) = 0.45
    assert pinball_loss(prediction, truth, (0.1, 0.9)).item() == pytest.approx((0.1 + 0.45 + 0.1 + 0.45) / 4)


def test_pinball_loss_at_the_median_is_half_the_absolute_error():
    torch.manual_seed(0)
    prediction, truth = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    loss = pinball_loss(prediction.unsqueeze(-1), truth, (0.5,))
    torch.testing.assert_close(loss, 0.5 * torch.nn.functional.l1_loss(prediction, truth))


def test_levels_are_sorted_with_the_median_added():
    assert check_quantiles("0.9, 0.1") == (0.1, 0.5, 0.9)
    assert check_quantiles([0.5, 0.05, 0.95]) == (0.05, 0.5, 0.95)
    assert check_quantiles("") == () and check_quantiles(()) == ()


@pytest.mark.parametrize("levels, message", [("0,0.5", "strictly between 0 and 1"), ("0.1,1.2", "1.2"),
                                             ("0.1,x", "numbers in (0, 1)"), ([float("nan")], "between 0 and 1")])
def test_levels_outside_zero_one_are_refused(levels, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_quantiles(levels)


@pytest.mark.parametrize("levels", [[1.0], "0.5,1", [0.0], [float("inf")]])
def test_levels_zero_and_one_themselves_are_refused(levels):
    # a quantile level is a probability strictly inside (0, 1): τ = 0 or 1 is an infinite bound
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        check_quantiles(levels)


def test_every_bad_level_is_named_in_the_message_separated_by_commas():
    with pytest.raises(ValueError, match=r"; got 0, 1\.5, -2$"):
        check_quantiles("0,0.5,1.5,-2")
    with pytest.raises(ValueError, match=r"; got 1\.0000001$"):  # as written, not rounded to a "1" in range
        check_quantiles("0.1,1.0000001")


def test_central_intervals_pair_each_level_with_its_mirror():
    assert central_intervals((0.1, 0.5, 0.9)) == {"80": (0, 2)}
    assert central_intervals((0.025, 0.1, 0.5, 0.9, 0.975)) == {"95": (0, 4), "80": (1, 3)}
    assert central_intervals((0.2, 0.5, 0.9)) == {}  # 0.2 has no 0.8
    assert central_intervals((0.0125, 0.5, 0.9875)) == {"97.5": (0, 2)}  # not rounded to a whole percent
    # a mirror within 1e-9 (absolute) counts, whatever the level's size
    assert central_intervals((0.4, 0.5, 0.6 + 8e-10)) == {"20": (0, 2)}
    assert central_intervals((0.4, 0.5, 0.6 + 2e-9)) == {}
    # names keep 6 decimals: an interval 0.01234567 % wide is called 0.012346
    low = 0.5 - 0.01234567 / 200
    assert central_intervals((low, 0.5, 1 - low)) == {"0.012346": (0, 2)}


def test_median_index_is_where_the_median_level_is():
    assert median_index((0.1, 0.5, 0.9)) == 1
    assert median_index((0.5, 0.75)) == 0
    assert median_index((0.01, 0.02, 0.5)) == 2


def test_pinball_loss_in_float64_uses_the_levels_exactly():
    # τ = 0.1 and 0.7 as float64 (a float32 τ is off by ~1e-9): y - ŷ = 3 and -2
    prediction = torch.tensor([[-2.0, 3.0]], dtype=torch.float64)
    truth = torch.tensor([1.0], dtype=torch.float64)
    loss = pinball_loss(prediction, truth, (0.1, 0.7))
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx((0.1 * 3 + 0.3 * 2) / 2, rel=1e-14)


def test_pinball_loss_stays_on_the_device_of_the_prediction():
    # the meta device stands in for an accelerator: mixing it with CPU tensors raises
    prediction, truth = torch.zeros(4, 3, device="meta"), torch.zeros(4, device="meta")
    assert pinball_loss(prediction, truth, (0.1, 0.5, 0.9)).device.type == "meta"


def test_rearranged_quantiles_never_cross_and_never_lose_pinball():
    torch.manual_seed(0)
    levels = (0.1, 0.5, 0.9)
    prediction, truth = torch.randn(200, 3), torch.randn(200)
    ordered = rearrange(prediction)
    assert (ordered.diff(dim=-1) >= 0).all()
    for i in range(len(truth)):  # per value, not only on average
        assert pinball_loss(ordered[i], truth[i], levels) <= pinball_loss(prediction[i], truth[i], levels) + 1e-7


def test_quantile_errors_count_the_truths_inside_each_interval():
    levels = (0.1, 0.5, 0.9)
    prediction = np.array([[0.0, 1.0, 2.0]] * 4)  # the 80 % interval [0, 2] for each of 4 values
    truth = np.array([-0.5, 0.0, 1.5, 2.5])  # inside: 0.0 (the bound counts) and 1.5
    scores = quantile_errors(prediction, truth, levels)
    assert scores["coverage_80"] == 0.5
    assert quantile_errors(prediction, np.array([2.0, 2.0, 0.0, 3.0]), levels)["coverage_80"] == 0.75  # both bounds
    # by hand, per truth (levels 0.1, 0.5, 0.9): y=-0.5: 0.9·0.5 + 0.5·1.5 + 0.1·2.5; y=0: 0 + 0.5 + 0.1·2;
    # y=1.5: 0.1·1.5 + 0.5·0.5 + 0.1·0.5; y=2.5: 0.1·2.5 + 0.5·1.5 + 0.9·0.5
    expected = (0.45 + 0.75 + 0.25 + 0.0 + 0.5 + 0.2 + 0.15 + 0.25 + 0.05 + 0.25 + 0.75 + 0.45) / 12
    assert scores["quantile_loss"] == pytest.approx(expected)


def test_conformal_offsets_take_the_finite_sample_rank_of_the_residuals():
    # n = 9 residuals y − ŷ = 1 … 9 for every level: τ = 0.9 takes the ⌈10·0.9⌉ = 9th smallest (9),
    # τ = 0.1 the ⌊10·0.1⌋ = 1st (1), τ = 0.25 the ⌊2.5⌋ = 2nd (2), τ = 0.75 the ⌈7.5⌉ = 8th (8);
    # the median stays.
    levels = (0.1, 0.25, 0.5, 0.75, 0.9)
    truth = np.arange(1.0, 10.0).reshape(9, 1, 1)  # (N, H, C)
    prediction = np.zeros((9, 1, 1, 5))
    assert conformal_offsets(prediction, truth, levels).tolist() == [[1.0, 2.0, 0.0, 8.0, 9.0]]
    # ranks past the ends are clipped: 3 residuals, τ = 0.9 asks for the ⌈3.6⌉ = 4th, gets the 3rd
    assert conformal_offsets(np.zeros((3, 1, 1, 3)), np.array([5.0, 7.0, 6.0]).reshape(3, 1, 1),
                             (0.1, 0.5, 0.9)).tolist() == [[5.0, 0.0, 7.0]]


def test_conformal_offsets_bring_a_too_narrow_interval_to_its_coverage_on_new_data():
    # Gaussian noise (σ = 1, two channels of different spread): a forecaster whose 0.1 and 0.9
    # quantiles are ∓0.5σ covers P(|Z| < 0.5) ≈ 38 % of the values. Offsets from one draw make the
    # interval cover 80 % ± 2 of another (the true quantiles are ∓1.2816σ).
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 3.0])  # per channel
    levels = (0.1, 0.5, 0.9)
    narrow = np.stack([-0.5 * scale, 0 * scale, 0.5 * scale], axis=-1)  # (C, Q)

    def draw(n):
        truth = rng.normal(size=(n, 4, 2)) * scale  # (N, H, C)
        return np.broadcast_to(narrow, (n, 4, 2, 3)).copy(), truth

    prediction, truth = draw(2000)
    offsets = conformal_offsets(prediction, truth, levels)  # (C, Q)
    assert offsets[:, 1].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(offsets[:, 2], (1.2816 - 0.5) * scale, rtol=0.08)
    np.testing.assert_allclose(offsets[:, 0], -(1.2816 - 0.5) * scale, rtol=0.08)
    prediction, truth = draw(2000)
    assert quantile_errors(prediction, truth, levels)["coverage_80"] < 0.42
    shifted = calibrated(torch.as_tensor(prediction), offsets.tolist(), levels).numpy()
    assert abs(quantile_errors(shifted, truth, levels)["coverage_80"] - 0.80) < 0.02


def test_calibration_must_be_channels_by_levels():
    assert check_calibration([], 2, (0.1, 0.5, 0.9)) == []
    assert check_calibration([[1, 0, 2]], 1, (0.1, 0.5, 0.9)) == [[1.0, 0.0, 2.0]]
    for bad in ([[1.0, 0.0]], [[1.0, 0.0, 2.0]] * 2, [[float("nan"), 0.0, 1.0]]):
        with pytest.raises(ValueError, match="calibration must hold 1 rows"):
            check_calibration(bad, 1, (0.1, 0.5, 0.9))


def test_rolling_calibration_reads_the_latest_windows_known_at_each_block_and_nothing_after():
    # H = 3: window j's values are all known at window i's origin when j <= i - 3. Blocks of 3 origins
    # from window 10: the block 10-12 is calibrated on windows 4-7 (K = 4), the block 13-15 on 7-10.
    rng = np.random.default_rng(1)
    levels = (0.1, 0.5, 0.9)
    prediction, truth = rng.normal(size=(19, 3, 2, 3)), rng.normal(size=(19, 3, 2)) * 2

    def by_hand(block, known):
        offsets = conformal_offsets(prediction[known], truth[known], levels).tolist()
        return calibrated(torch.as_tensor(prediction[block]), offsets, levels).numpy()

    out = rolling_calibrated(prediction, truth, levels, first=10, window=4, fallback=[])
    assert out.shape == (9, 3, 2, 3)
    np.testing.assert_array_equal(out[0:3], by_hand(slice(10, 13), slice(4, 8)))
    np.testing.assert_array_equal(out[3:6], by_hand(slice(13, 16), slice(7, 11)))
    np.testing.assert_array_equal(out[6:9], by_hand(slice(16, 19), slice(10, 14)))

    later = truth.copy()
    later[8:] += 100.0  # values not all known when the block 10-12 begins
    np.testing.assert_array_equal(rolling_calibrated(prediction, later, levels, first=10, window=4, fallback=[])[:3],
                                  out[:3])
    known = truth.copy()
    known[7] += 100.0  # the latest window known then
    assert not np.array_equal(rolling_calibrated(prediction, known, levels, first=10, window=4, fallback=[])[:3],
                              out[:3])


def test_rolling_calibration_falls_back_while_fewer_windows_are_known():
    rng = np.random.default_rng(2)
    levels = (0.1, 0.5, 0.9)
    prediction, truth = rng.normal(size=(12, 3, 1, 3)), rng.normal(size=(12, 3, 1))
    fallback = [[-1.0, 0.0, 1.0]]
    # K = 3: the block 2-4 (no window known) takes the fallback, 5-7 windows 0-2 (just three), 8-10 3-5
    out = rolling_calibrated(prediction, truth, levels, first=2, window=3, fallback=fallback)
    np.testing.assert_array_equal(out[:3], calibrated(torch.as_tensor(prediction[2:5]), fallback, levels).numpy())
    for block, known in ((slice(5, 8), slice(0, 3)), (slice(8, 11), slice(3, 6))):
        offsets = conformal_offsets(prediction[known], truth[known], levels).tolist()
        np.testing.assert_array_equal(out[block.start - 2:block.stop - 2],
                                      calibrated(torch.as_tensor(prediction[block]), offsets, levels).numpy())
    # K = 4: the block 5-7 knows three windows, fewer than K: the fallback
    four = rolling_calibrated(prediction, truth, levels, first=2, window=4, fallback=fallback)
    np.testing.assert_array_equal(four[3:6], calibrated(torch.as_tensor(prediction[5:8]), fallback, levels).numpy())
    gap = truth.copy()
    gap[4] = np.nan  # a missing value among the windows 3-5: their offsets are not numbers
    np.testing.assert_array_equal(rolling_calibrated(prediction, gap, levels, first=2, window=3, fallback=fallback)[6:9],
                                  calibrated(torch.as_tensor(prediction[8:11]), fallback, levels).numpy())
    # K = 0 never recalibrates
    np.testing.assert_array_equal(rolling_calibrated(prediction, truth, levels, first=0, window=0, fallback=fallback),
                                  calibrated(torch.as_tensor(prediction), fallback, levels).numpy())


def test_rolling_calibration_follows_a_spread_that_changes_where_calibrating_once_cannot():
    # Gaussian noise whose σ goes from 1 to 3 halfway; the forecaster's 0.1 and 0.9 quantiles are the
    # first half's (∓1.2816). Offsets fitted once on the first half cover P(|Z| < 1.2816/3) ≈ 33 % of
    # the second; recalibrated on the latest 200 windows they cover 80 % ± 3 once those are all new.
    rng = np.random.default_rng(3)
    levels, n, horizon = (0.1, 0.5, 0.9), 3000, 4
    sigma = np.where(np.arange(2 * n) < n, 1.0, 3.0)[:, None, None]
    truth = rng.normal(size=(2 * n, horizon, 1)) * sigma
    prediction = np.broadcast_to(np.array([-1.2816, 0.0, 1.2816]), (2 * n, horizon, 1, 3)).copy()
    once = conformal_offsets(prediction[:n], truth[:n], levels).tolist()
    settled = n + 200 + horizon  # the first window whose 200 calibration windows are all of the second half
    fixed = calibrated(torch.as_tensor(prediction[settled:]), once, levels).numpy()
    assert quantile_errors(fixed, truth[settled:], levels)["coverage_80"] < 0.40
    rolled = rolling_calibrated(prediction, truth, levels, first=settled, window=200, fallback=once)
    assert abs(quantile_errors(rolled, truth[settled:], levels)["coverage_80"] - 0.80) < 0.03

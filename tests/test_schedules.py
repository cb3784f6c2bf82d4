"""Learning-rate schedules and batch fit, against figures worked out by hand from the original's
formulas in docs/design.md."""
import pytest

from nets.schedules import fit_learning_rates, get_lr_scheduler, lr_fit_notes

# The schedules at lr 1e-3, min_lr 1e-5, worked out by hand from docs/design.md's formulas:
# lr - min_lr = 9.9e-4; the cos warm-up starts at s = max(0.1 * 1e-3, 1e-6) = 1e-4.
COS = {  # total epochs E -> {epoch e: learning rate}
    # E = 1: w = min(max(0.1, 1), 3) = 1, t = min(max(0.3, 1), 15) = 1; e = 0 <= w: warm-up
    1: {0: 1e-4},  # (1e-3 - 1e-4) * (0/1)^2 + 1e-4
    # E = 3: w = 1, t = 1
    3: {0: 1e-4, 1: 1e-3,  # 9e-4 * (1/1)^2 + 1e-4
        2: 1e-5},  # e = 2 >= E - t = 2: min_lr
    # E = 10: w = 1, t = 3; the cosine runs over E - w - t = 6 epochs: angle pi * (e - 1) / 6
    10: {0: 1e-4, 1: 1e-3,
         2: 9.336825748732972e-4,  # 1e-5 + 9.9e-4 * (1 + cos(pi/6)) / 2 = 1e-5 + 9.9e-4 * 0.9330127
         3: 7.525e-4,  # 1e-5 + 9.9e-4 * (1 + 0.5) / 2
         4: 5.05e-4,  # 1e-5 + 9.9e-4 * (1 + 0) / 2
         5: 2.575e-4,  # 1e-5 + 9.9e-4 * (1 - 0.5) / 2
         6: 7.631742512670284e-5,  # 1e-5 + 9.9e-4 * (1 - 0.8660254) / 2 = 1e-5 + 9.9e-4 * 0.0669873
         7: 1e-5, 8: 1e-5, 9: 1e-5},  # e >= E - t = 7
    # E = 100: w = min(10, 3) = 3, t = min(30, 15) = 15; cosine over 100 - 3 - 15 = 82 epochs
    100: {0: 1e-4, 1: 2e-4,  # 9e-4 * (1/3)^2 + 1e-4 = 1e-4 + 1e-4
          2: 5e-4,  # 9e-4 * (2/3)^2 + 1e-4 = 4e-4 + 1e-4
          3: 1e-3,
          44: 5.05e-4,  # angle pi * (44 - 3) / 82 = pi/2: 1e-5 + 9.9e-4 / 2
          84: 1.036324037984905e-5,  # cos(pi * 81/82) = -0.9992662: 1e-5 + 9.9e-4 * 0.0003669
          85: 1e-5, 99: 1e-5},  # e >= 100 - 15 = 85
}
# step: d = (1e-5 / 1e-3)^(1/9) = 10^(-2/9) = 0.59948425; rate 1e-3 * d^floor(e / (E/10))
STEP = {
    1: {0: 1e-3},  # floor(0 / 0.1) = 0
    3: {0: 1e-3,
        1: 2.154434690031884e-4,  # floor(1 / 0.3) = 3: 1e-3 * 10^(-6/9)
        2: 4.64158883361278e-5},  # floor(2 / 0.3) = 6: 1e-3 * 10^(-12/9)
    10: {0: 1e-3, 1: 5.994842503189411e-4,  # E/10 = 1, so d^e: 1e-3 * 10^(-2e/9)
         2: 3.593813663804628e-4, 3: 2.154434690031884e-4, 4: 1.2915496650148838e-4,
         5: 7.74263682681127e-5, 6: 4.64158883361278e-5, 7: 2.7825594022071243e-5,
         8: 1.6681005372000593e-5, 9: 1e-5},  # 1e-3 * 10^(-18/9)
    100: {0: 1e-3, 9: 1e-3,  # floor(9 / 10) = 0
          10: 5.994842503189411e-4, 95: 1e-5, 99: 1e-5},  # floor(95 / 10) = 9: 1e-3 * d^9
}


@pytest.mark.parametrize("kind,table", [("cos", COS), ("step", STEP)])
@pytest.mark.parametrize("total", [1, 3, 10, 100])
def test_schedules_give_the_hand_worked_rates(kind, table, total):
    schedule = get_lr_scheduler(kind, 1e-3, 1e-5, total)
    expected = table[total]
    assert {e: schedule(e) for e in expected} == pytest.approx(expected, rel=1e-9)
    assert all(1e-5 * 0.999 <= schedule(e) <= 1e-3 * 1.001 for e in range(total))


@pytest.mark.parametrize("batch,optimizer,expected", [
    (3, "adam", (3e-4, 3e-6)), (48, "adam", (7.5e-4, 7.5e-6)), (96, "adam", (1e-3, 1e-5)),
    (960, "adam", (1e-3, 1e-5)), (3, "sgd", (5e-4, 5e-6)), (48, "sgd", (7.5e-4, 7.5e-6)),
    (96, "sgd", (1.5e-3, 1.5e-5)), (960, "sgd", (1.5e-2, 1.5e-4))])
def test_batch_fit(batch, optimizer, expected):
    assert fit_learning_rates(batch, 1e-3, 1e-5, optimizer) == pytest.approx(expected, rel=1e-12)


def test_clipped_rates_are_named():
    assert lr_fit_notes(48, 1e-3, 1e-5, "adam") == []  # 7.5e-4 and 7.5e-6: inside the limits
    notes = lr_fit_notes(48, 1e-3, 1e-4, "adam")  # 7.5e-5 asked, Adam's tail is capped at 1e-5
    assert len(notes) == 1 and notes[0].startswith("--min-lr 0.0001") and "using 1e-05" in notes[0]
    notes = lr_fit_notes(960, 1e-3, 1e-5, "adam")
    assert [n.split()[0] for n in notes] == ["--init-lr", "--min-lr"]


def test_unknown_names_are_rejected_with_choices():
    with pytest.raises(ValueError, match="cos"):
        get_lr_scheduler("linear", 1e-3, 1e-5, 10)
    with pytest.raises(ValueError, match="adam"):
        fit_learning_rates(96, 1e-3, 1e-5, "rmsprop")

"""A wrong answer gets a message a student understands, and costs only its own exercise."""

from __future__ import annotations

from grader import paths

WRONG_NOISING = "    return jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1.0 - alpha_bar) * noise"
CRASHING_STEP = "    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]"


def broken_submission(tmp_path):
    """03_ddpm with a wrong forward_noise, a crashing reverse_step and no ddpm_loss."""
    text = (paths.SOLUTIONS / "diffusion" / "03_ddpm.py").read_text()
    assert WRONG_NOISING in text and CRASHING_STEP in text and "def ddpm_loss(" in text
    text = text.replace(WRONG_NOISING, "    return alpha_bar * x0 + (1.0 - alpha_bar) * noise")
    text = text.replace(CRASHING_STEP, '    raise ValueError("my own bug")')
    text = text.replace("def ddpm_loss(", "def ddpm_loss_renamed(")
    (tmp_path / "diffusion").mkdir(parents=True)
    (tmp_path / "diffusion" / "03_ddpm.py").write_text(text)
    return tmp_path


def failures_by_exercise(outcomes):
    result = {}
    for outcome in outcomes:
        result.setdefault(outcome["exercise"], []).append(outcome)
    return result


def test_each_kind_of_mistake_gets_a_short_readable_message(tmp_path, run_tests):
    target = broken_submission(tmp_path / "submission")
    outcomes, output = run_tests(
        str(paths.EXERCISES / "diffusion" / "test_03_ddpm.py"), f"--target={target}"
    )
    by_exercise = failures_by_exercise(outcomes)

    noising = by_exercise["forward_noise"]
    assert all(o["outcome"] == "failed" for o in noising), output
    message = noising[0]["message"]
    assert "yours" in message and "expected" in message and "at [" in message, message
    assert len(message.splitlines()) <= 8, message

    crashing = by_exercise["reverse_step"]
    assert all(o["outcome"] == "failed" for o in crashing)
    assert all("Your code raised ValueError: my own bug" in o["message"] for o in crashing)
    assert all("03_ddpm.py:" in o["message"] and len(o["message"].splitlines()) <= 5 for o in crashing)

    missing = by_exercise["ddpm_loss"]
    assert all("`ddpm_loss` is not defined in" in o["message"] for o in missing)

    # The sampler is correct: it is graded with the reference's reverse_step, so it passes.
    assert all(o["outcome"] == "passed" for o in by_exercise["ddpm_sample"]), output


def test_a_missing_script_is_reported_not_crashed(tmp_path, run_tests):
    (tmp_path / "diffusion").mkdir()
    outcomes, output = run_tests(str(paths.EXERCISES / "diffusion" / "test_03_ddpm.py"), f"--target={tmp_path}")
    assert outcomes and all(o["outcome"] == "failed" for o in outcomes), output
    assert "03_ddpm.py (or .ipynb) is missing" in outcomes[0]["message"]


def test_a_wrong_target_folder_is_a_usage_error(tmp_path, run_tests):
    _, output = run_tests(str(paths.EXERCISES / "diffusion"), f"--target={tmp_path / 'nope'}")
    assert "no such folder" in output

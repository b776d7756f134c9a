import pytest

from trainer.engine.config import (
    BAD_CHOICE,
    BAD_LEARNING_RATE,
    BAD_RATIO,
    MUST_BE_POSITIVE,
    UNKNOWN_FIELDS,
    ConfigError,
    TrainConfig,
    field_help,
    settings_that_apply,
)


def test_defaults_follow_current_qlora_practice():
    config = TrainConfig()
    assert (config.rank, config.alpha, config.learning_rate) == (16, 32, 2e-4)
    assert (config.scheduler, config.warmup_ratio, config.epochs) == ("cosine", 0.03, 3)
    assert (config.patience, config.target_modules, config.dropout) == (2, "all-linear", 0.05)


def test_alpha_defaults_to_twice_the_rank_and_an_explicit_alpha_is_kept():
    assert TrainConfig(rank=64).alpha == 128
    assert TrainConfig(rank=64, alpha=16).alpha == 16


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rank": 0}, MUST_BE_POSITIVE.format(name="rank", value=0)),
        ({"batch_size": 0}, MUST_BE_POSITIVE.format(name="batch_size", value=0)),
        ({"learning_rate": 0.0}, BAD_LEARNING_RATE.format(value=0.0)),
        ({"dropout": 1.0}, BAD_RATIO.format(name="dropout", value=1.0)),
        ({"warmup_ratio": -0.1}, BAD_RATIO.format(name="warmup_ratio", value=-0.1)),
        (
            {"scheduler": "step"},
            BAD_CHOICE.format(
                name="scheduler",
                choices="cosine, linear, constant_with_warmup, constant",
                value="step",
            ),
        ),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(settings, message):
    with pytest.raises(ConfigError) as error:
        TrainConfig(**settings)
    assert str(error.value) == message


def test_round_trips_through_a_dict_and_refuses_unknown_keys():
    config = TrainConfig(rank=8, target_modules="q_proj, v_proj")
    assert TrainConfig.from_dict(config.as_dict()) == config
    assert config.peft_target_modules() == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match=UNKNOWN_FIELDS.format(names="lora_r")):
        TrainConfig.from_dict({"lora_r": 8})


def test_help_says_why_and_shows_the_default():
    assert field_help("rank").endswith("(default: 16)")
    assert "16–64" in field_help("rank")
    assert field_help("alpha").endswith("(default: 2 × rank)")


def test_a_run_shows_only_the_settings_its_method_reads():
    recorded = {"method": "sft", "beta": 0.1, "packing": "auto", "rank": 16}
    assert settings_that_apply(recorded) == {"method": "sft", "packing": "auto", "rank": 16}
    dpo = {**recorded, "method": "dpo"}
    assert settings_that_apply(dpo) == {"method": "dpo", "beta": 0.1, "rank": 16}
    # Runs recorded before the method existed were SFT.
    assert settings_that_apply({"beta": 0.1, "rank": 16}) == {"rank": 16}

"""Shipping an adapter: ``manage.py export_adapter``, the run page's zip and the API's."""

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from evalhub.management.commands import export_adapter as cmd
from evalhub.reports import adapter_export
from tests.evalhub.lineage_fixtures import build_loop
from tests.factories import FineTuneRunFactory

pytestmark = pytest.mark.django_db
ADAPTER_FILES = {"adapter_config.json": b'{"r": 16}', "adapter_model.safetensors": b"\x00" * 64}


@pytest.fixture
def loop(tmp_path):
    loop = build_loop()
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for name, content in ADAPTER_FILES.items():
        (adapter / name).write_bytes(content)
    (adapter / "README.md").write_text("peft's placeholder card")
    loop.v2.adapter_path = str(adapter)
    loop.v2.save()
    return loop


def _export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_adapter", *args, stdout=out)
    return out.getvalue()


def test_the_export_holds_the_adapter_files_and_the_model_card(loop, tmp_path):
    out = tmp_path / "ship"
    said = _export("--run", str(loop.v2.pk), "--out", str(out))
    assert said.startswith(f"wrote 3 files to {out}")
    assert {p.name for p in out.iterdir()} == {*ADAPTER_FILES, "README.md"}
    for name, content in ADAPTER_FILES.items():
        assert (out / name).read_bytes() == content
    card = (out / "README.md").read_text()
    assert card.startswith("---\nbase_model: ") and "library_name: peft" in card
    assert "| base | base:smollm | test round | 0.750 [95 % CI" in card
    assert "> lost" in card


@pytest.mark.parametrize("force", [False, True])
def test_a_non_empty_directory_is_refused_unless_forced(loop, tmp_path, force):
    out = tmp_path / "ship"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["--run", str(loop.v2.pk), "--out", str(out)]
    if not force:
        with pytest.raises(CommandError) as err:
            _export(*args)
        assert err.value.returncode == 2
        assert str(err.value) == adapter_export.ERROR_OUT_NOT_EMPTY.format(path=out)
        assert {p.name for p in out.iterdir()} == {"keep.txt"}
    else:
        _export(*args, "--force")
        assert {p.name for p in out.iterdir()} == {"keep.txt", *ADAPTER_FILES, "README.md"}


def test_a_run_without_an_adapter_is_refused_and_nothing_is_written(loop, tmp_path):
    out = tmp_path / "ship"
    with pytest.raises(CommandError) as err:
        _export("--run", str(loop.v1.pk), "--out", str(out))
    assert err.value.returncode == 2
    assert str(err.value) == adapter_export.ERROR_NO_ADAPTER.format(run_id=loop.v1.pk)
    assert not out.exists()


def test_an_unknown_run_is_refused(tmp_path):
    with pytest.raises(CommandError) as err:
        _export("--run", "424242", "--out", str(tmp_path / "x"))
    assert err.value.returncode == 2
    assert str(err.value) == cmd.ERROR_UNKNOWN_RUN.format(run_id=424242)


def _zip_names(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_run_page_links_a_zip_of_the_same_files(manager_client, loop):
    url = reverse("run_adapter", args=[loop.v2.pk])
    assert url in manager_client.get(reverse("run_detail", args=[loop.v2.pk])).content.decode()
    response = manager_client.get(url)
    assert response["Content-Type"] == "application/zip"
    assert f'filename="adapter-run-{loop.v2.pk}.zip"' in response["Content-Disposition"]
    files = _zip_names(response.content)
    folder = f"adapter-run-{loop.v2.pk}"
    assert set(files) == {f"{folder}/{name}" for name in (*ADAPTER_FILES, "README.md")}
    assert files[f"{folder}/README.md"].decode().startswith("---\nbase_model:")


def test_the_api_answers_the_zip_and_404_without_an_adapter(manager_client, loop):
    response = manager_client.get(f"/api/runs/{loop.v2.pk}/adapter/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'filename="adapter-run-{loop.v2.pk}.zip"' in response["Content-Disposition"]
    folder = f"adapter-run-{loop.v2.pk}"
    files = _zip_names(response.content)
    assert set(files) == {f"{folder}/{name}" for name in (*ADAPTER_FILES, "README.md")}
    missing = manager_client.get(f"/api/runs/{loop.v1.pk}/adapter/")
    assert missing.status_code == 404
    assert adapter_export.ERROR_NO_ADAPTER.format(run_id=loop.v1.pk) in missing.json()["detail"]
    assert manager_client.get(reverse("run_adapter", args=[loop.v1.pk])).status_code == 404


def test_merged_writes_a_model_that_answers_like_base_plus_adapter(tmp_path):
    """A tiny Llama and a random LoRA: the merged model's logits equal the peft model's."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tests.trainer.tiny_llm import build_lora_adapter, build_tiny_llm

    model_dir = build_tiny_llm(tmp_path / "tiny")
    adapter_dir = build_lora_adapter(model_dir, tmp_path / "lora")
    run = FineTuneRunFactory(
        adapter_path=str(adapter_dir), base_model__name="tiny", base_model__source=str(model_dir)
    )
    out = tmp_path / "ship"
    said = _export("--run", str(run.pk), "--out", str(out), "--merged")
    assert f"wrote the merged model to {out / 'merged'}" in said
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    assert not hasattr(merged, "peft_config")
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    with_adapter = PeftModel.from_pretrained(base, adapter_dir)
    ids = torch.tensor([[2, 4, 9, 10, 11, 5]])
    with torch.no_grad():
        expected = with_adapter(ids).logits
        got = merged(ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    with with_adapter.disable_adapter(), torch.no_grad():
        assert not torch.allclose(got, with_adapter(ids).logits, atol=1e-3)
    assert (out / "merged" / "tokenizer_config.json").is_file()

import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from evalhub.roles import is_expert, is_manager
from evalhub.services.accounts import user_create


@pytest.mark.django_db
def test_createexpert_makes_an_expert_who_can_log_in(client, capsys):
    call_command("createexpert", "alice", "--password", "s3cret-words")
    assert "created expert alice" in capsys.readouterr().out
    assert client.login(username="alice", password="s3cret-words")
    user = get_user_model().objects.get(username="alice")
    assert is_expert(user) and not is_manager(user)


@pytest.mark.django_db
def test_createexpert_manager_flag_makes_staff():
    user, password = user_create(username="lead", manager=True)
    assert is_manager(user) and not is_expert(user)
    assert len(password) >= 12


@pytest.mark.django_db
def test_createexpert_refuses_a_taken_username():
    user_create(username="bob")
    with pytest.raises(CommandError, match="already exists"):
        call_command("createexpert", "bob")


def test_manage_check_never_imports_torch():
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE']='evalhub.settings_test';"
        "django.setup(); from django.core.management import call_command;"
        "import evalhub.urls; call_command('check');"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes')"
        " if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

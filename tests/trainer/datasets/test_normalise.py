"""A conversation's prompt (the turns up to the last user turn) and the hash that ties a
study's prompt to the rows a run trained on."""

from trainer.datasets.normalise import content_hash, prompt_hash, split_conversation


def test_split_conversation_keeps_turns_up_to_the_last_user_and_takes_the_answer_after_it():
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]
    prompt, reference = split_conversation(messages)
    assert prompt == messages[:3]
    assert reference == "a2"
    assert split_conversation([{"role": "assistant", "content": "x"}]) is None
    assert split_conversation(messages[:3]) == (messages[:3], "")


def test_the_prompt_hash_ignores_the_answer_but_not_the_question():
    asked = [{"role": "user", "content": "why?"}]
    answered = [*asked, {"role": "assistant", "content": "because"}]
    assert prompt_hash(asked) == prompt_hash(answered) == content_hash(asked)
    assert prompt_hash(asked) != prompt_hash([{"role": "user", "content": "why not?"}])
    assert prompt_hash([{"role": "system", "content": "only a system turn"}]) is None

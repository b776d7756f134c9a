"""Hooks that remember what the loop told them, and can ask it to stop after a given step."""

from trainer.engine.hooks import TrainHooks


class RecordingHooks(TrainHooks):
    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.start = None
        self.steps = []
        self.evaluations = []
        self.checkpoints = []
        self.heartbeats = 0
        self.stop_questions = 0

    def on_start(self, info):
        self.start = info

    def on_step(self, progress):
        self.steps.append(progress)

    def on_evaluate(self, evaluation):
        self.evaluations.append(evaluation)

    def on_checkpoint(self, path, step):
        self.checkpoints.append((path, step))

    def on_heartbeat(self):
        self.heartbeats += 1

    def should_stop(self):
        self.stop_questions += 1
        return (
            self.stop_after is not None
            and bool(self.steps)
            and (self.steps[-1].step >= self.stop_after)
        )

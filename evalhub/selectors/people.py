"""Who can rate and manage, and what each of them has been given to rate."""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q

from evalhub.models import Assignment
from evalhub.roles import EXPERT_GROUP, REVIEWER_GROUP


@dataclass
class StudyWork:
    study_id: int
    name: str
    assigned: int
    judged: int


@dataclass
class Person:
    user: AbstractBaseUser
    expert: bool
    reviewer: bool
    studies: list[StudyWork] = field(default_factory=list)

    @property
    def assigned(self) -> int:
        return sum(s.assigned for s in self.studies)

    @property
    def judged(self) -> int:
        return sum(s.judged for s in self.studies)


def active_expert_count() -> int:
    """Active accounts in the expert group: the most raters a new study can have."""
    users = get_user_model().objects.filter(is_active=True, groups__name=EXPERT_GROUP)
    return users.distinct().count()


def people_list() -> list[Person]:
    """Every account, managers first, each with its studies and assigned and judged counts."""
    users = (
        get_user_model()
        .objects.annotate(
            expert=Count("groups", filter=Q(groups__name=EXPERT_GROUP)),
            reviewer=Count("groups", filter=Q(groups__name=REVIEWER_GROUP)),
        )
        .order_by("-is_staff", "username")
    )
    people = {
        user.pk: Person(user=user, expert=bool(user.expert), reviewer=bool(user.reviewer))
        for user in users
    }
    work = (
        Assignment.objects.values("rater_id", "comparison__study_id", "comparison__study__name")
        .annotate(assigned=Count("id"), judged=Count("judgment"))
        .order_by("rater_id", "comparison__study__name")
    )
    for row in work:
        people[row["rater_id"]].studies.append(
            StudyWork(
                study_id=row["comparison__study_id"],
                name=row["comparison__study__name"],
                assigned=row["assigned"],
                judged=row["judged"],
            )
        )
    return list(people.values())

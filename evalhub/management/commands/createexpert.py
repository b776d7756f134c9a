from django.core.management.base import BaseCommand, CommandError

from evalhub.services.accounts import user_create


class Command(BaseCommand):
    help = (
        "Create a rater (expert) account, or with --manager a manager, or with --reviewer a "
        "reviewer; prints the password."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="Default: a random one, printed once")
        parser.add_argument(
            "--manager", action="store_true", help="Staff account that sees everything"
        )
        parser.add_argument(
            "--reviewer",
            action="store_true",
            help="Settles the comparisons where raters split or flagged one, blinded",
        )

    def handle(self, *args, username, email, password, manager, reviewer, **options):
        try:
            user, password = user_create(
                username=username,
                password=password,
                email=email,
                manager=manager,
                reviewer=reviewer,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        role = "manager" if manager else "reviewer" if reviewer else "expert"
        self.stdout.write(f"created {role} {user.username} with password {password}")

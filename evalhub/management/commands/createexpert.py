from django.core.management.base import BaseCommand, CommandError

from evalhub.services.accounts import user_create


class Command(BaseCommand):
    help = "Create a rater (expert) account, or with --manager a manager; prints the password."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="Default: a random one, printed once")
        parser.add_argument(
            "--manager", action="store_true", help="Staff account that sees everything"
        )

    def handle(self, *args, username, email, password, manager, **options):
        try:
            user, password = user_create(
                username=username, password=password, email=email, manager=manager
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        role = "manager" if manager else "expert"
        self.stdout.write(f"created {role} {user.username} with password {password}")

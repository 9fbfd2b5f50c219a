"""`python -m pipewarden` runs the command line."""

from pipewarden.cli.main import run

if __name__ == "__main__":
    run()

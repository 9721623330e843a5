from shopctl.cli import app

app(prog_name="shopctl")

"""The remote command's environment: nested and relative cd() (with a space in the path),
absolute cd() resetting, prefix() stacking, shell_env, path() append/prepend/replace, shell
quoting of ' \" ` $ and %, the virtualenv 'source activate' idiom."""

CASE = {
    "runs": [
        {
            "name": "context-managers",
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "workdir={tmp}", "-H", "{t0}",
                     "envcheck", "virtualenv_style"],
            "stdout": [
                "[{t0}] out: {tmp}",
                "[{t0}] out: {tmp}/sub dir",
                "[{t0}] out: {tmp}/sub dir/inner",
                "[{t0}] out: /tmp",
                "[{t0}] out: hola mundo",
                "[{t0}] out: mode=blue empty=[]",
                "[{t0}] out: /opt/shop/bin",
                "[{t0}] out: /opt/first",
                "[{t0}] out: /opt/only",
                "[{t0}] run: echo 'single' \"double\" `echo back` $((2+3))",
                "[{t0}] out: single double back 5",
                "[{t0}] out: percent-100%",
                "[{t0}] Executing task 'virtualenv_style'",
                "[{t0}] out: venv={tmp}/venv",
                "[{t0}] out: shop.settings",
                "Done.",
            ],
        },
        {
            "name": "debug-shows-wrapping",
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "workdir={tmp}", "--show", "debug",
                     "-H", "{t0}", "virtualenv_style"],
            "stdout": [
                "re:^\\[{t0}\\] run: /bin/bash -l -c \"cd {tmp} >/dev/null && "
                "source venv/bin/activate && echo \\\\\"venv=\\\\\\$VIRTUAL_ENV\\\\\"\"$",
                "re:^\\[{t0}\\] run: /bin/bash -l -c \"export DJANGO_SETTINGS_MODULE="
                "\\\\\"shop\\.settings\\\\\" && cd {tmp} >/dev/null && source venv/bin/activate"
                " && echo \\\\\"\\\\\\$DJANGO_SETTINGS_MODULE\\\\\"\"$",
            ],
        },
    ],
}

"""Domain limits that every layer checks the same way (the grammar, the modals' parsers, the
schedule validation), so one number is stated in every message. Pure constants; imports nothing.
"""

from __future__ import annotations

# How many channels one command, form or schedule may name. Each named channel is checked against
# Slack's channel list before anything is stored or started, and a run walks them one by one:
# past this, "all channels" (the default) is the right choice anyway.
MAX_CHANNELS = 100

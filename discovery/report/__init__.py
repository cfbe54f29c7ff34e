"""The HTML report of a fitted law or a campaign: figures (``plots.py``) and the page (``html.py``)."""

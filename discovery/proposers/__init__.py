"""Where candidate laws come from: the ``Proposer`` base class (``base.py``), the
offline symbolic proposer (``offline/``), the language-model proposer (``llm/``),
and ``build.py``, which picks a campaign's proposers from its settings."""

"""biotune: instruction-tune Llama-family models on biomedical NLP corpora.

Data flows one way: sources -> tasks -> mixture -> tokenize/pack -> train -> export -> eval -> report.
"""

__version__ = "0.1.0"

"""The data module: native corpora -> typed records -> instruction samples -> mixture -> packed shards."""

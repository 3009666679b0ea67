"""Reports and docs, the last layer: the generated documentation (``python -m reports.docs``) and the
long-run drift study (``python -m reports.drift_study``).  They read every layer below; nothing imports them."""

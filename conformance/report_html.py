def write_report(d, result, drift_json, args):
    return d

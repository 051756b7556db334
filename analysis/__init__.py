"""Pure analysis of a kubeswarm run directory: load, judge, chart, report.

Nothing here talks to a cluster or to Locust; everything reads the files of the run directory
contract (see ``analysis.data.schema``) so runs from every mode are judged the same way.
"""

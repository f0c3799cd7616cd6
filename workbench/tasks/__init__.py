"""The tasks capability: the work a served model does for a person. Document QA (docqa over the text that documents
reads, each value's quote checked by fact_check, and its generated evaluation set docqa_dataset) and tool calling
(the registry and policy in tools, the offline demo_tools, the agent loop). They are one group because each is a use
of the model through serving that knows nothing of how it is benchmarked or compared; measurement scores them.
Nothing is re-exported: import the module, e.g. `from workbench.tasks import docqa`.
"""

"""The Gradio face of the workbench: one module per tab, each a thin layer over core calls."""

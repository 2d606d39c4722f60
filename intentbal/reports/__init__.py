"""The reports room: terminal and Markdown text, report files, the HTML page, plots, the model card and the manifest."""

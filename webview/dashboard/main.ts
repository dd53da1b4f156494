// PLACEHOLDER (being written): the dashboard webview.

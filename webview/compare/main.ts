// PLACEHOLDER (being written): the compare webview.

// The Python a `device: torch` run uses: the interpreter the user picked in the VS Code Python extension ("Python:
// Select Interpreter", per workspace folder), else its `python.defaultInterpreterPath` setting, else none (the
// engine then takes LORAPLUS_PYTHON, else python3). The extension is optional: asked only when a run needs Python.
import * as vscode from 'vscode';

/** The parts of the Python extension's API we use (ms-python.python, `environments`, 2023 and later). */
interface PythonApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { id: string; path: string };
    resolveEnvironment(env: { id: string; path: string }): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
  };
}

export async function pythonInterpreter(resource: vscode.Uri): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonApi>('ms-python.python');
  try {
    const api = ext ? (ext.isActive ? ext.exports : await ext.activate()) : undefined;
    const active = api?.environments?.getActiveEnvironmentPath(resource);
    if (active) {
      // A conda or venv environment's path may be its folder: the resolved environment names the executable.
      const env = await api!.environments!.resolveEnvironment(active);
      return env?.executable.uri?.fsPath ?? active.path;
    }
  } catch {
    // an extension that fails to activate is as good as none: fall through to the setting
  }
  const setting = vscode.workspace.getConfiguration('python', resource).get<string>('defaultInterpreterPath');
  return setting && setting !== 'python' ? setting : undefined;
}

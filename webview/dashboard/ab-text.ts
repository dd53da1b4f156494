// The A/B view's explanation of balanced training, for the run's λ and optimizer (DOM-free, tested in
// test/webview/ab-text.test.ts). It must hold at every λ: at λ = 1 both halves share one rate (plain LoRA), and
// riemannian and lorafa have no λ at all, so "B trains λ times faster" would contradict what the run did.
import { usesRatio } from '../../src/protocol/tune';

export function abExplanation(lambda: number, optimizer: string | undefined, stallFactor: number): string[] {
  const intro =
    'LoRA adds scaling·B·A to each target weight. A starts random and B at zero, ' +
    "so on the first step only B moves (A's gradient is zero until B is not). ";
  const rates = !usesRatio(optimizer)
    ? `This run trains with ${optimizer}, which has no λ: A and B share one learning rate ` +
      '(LoRA+ would train B faster, because with equal rates B learns too slowly in wide layers).'
    : lambda === 1
      ? 'This run uses λ = 1, plain LoRA: A and B share one learning rate. LoRA+ trains B at λ (e.g. 16) times ' +
        "A's rate, because with equal rates B learns too slowly in wide layers."
      : `LoRA+ trains B at λ = ${lambda} times A's learning rate, ` +
        'because with equal rates B learns too slowly in wide layers.';
  const target = usesRatio(optimizer) ? lambda : 1;
  const near = target === 1 ? '1 (λ = 1)' : `λ (${target})`;
  return [
    intro + rates,
    `In balanced training both halves keep moving. With Adam, ‖ΔB‖/‖ΔA‖ settles near ${near} ` +
      "for square-ish modules, and the output change due to B's update, ‖s·ΔB·A‖, " +
      "stays comparable to the one due to A's, ‖s·B·ΔA‖ (ratio within a decade or two of 1 once B has grown).",
    `A side stalls when its updates fall far behind: this view flags B when ‖ΔB‖ is ${stallFactor}× ` +
      `smaller than ‖ΔA‖, and A when ‖ΔA‖ is ${stallFactor}× smaller than ${target === 1 ? '‖ΔB‖' : 'λ asks for'}. ` +
      'Gradients (‖∇A‖, ‖∇B‖) show where the loss pulls; ' +
      'updates (‖ΔA‖, ‖ΔB‖) what the optimizer did.',
  ];
}

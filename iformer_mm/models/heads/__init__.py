"""mmpretrain classification heads (imports mmpretrain)."""
from .iformer_head import IFormerClsHead, IFormerDistillHead
from ..norm_linear import BNLinear, average_linears

__all__ = ['IFormerClsHead', 'IFormerDistillHead', 'BNLinear', 'average_linears']
